"""Django's PostgreSQL backend, with a health check that costs no round trip when it can.

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query of every request
that reuses a connection: one more round trip per API request, on a page that makes two.
Here an idle connection whose socket has nothing to read is taken as usable without asking
the server (a server that closed it, or is shutting down, leaves an end of file or a message
to read); anything else, or a connection not idle, gets Django's `SELECT 1`. A connection
that died silently (a network path cut without a reset) is found by the request's first
query, which fails and closes it, as it would between the check and that query anyway.
"""

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper
from psycopg import pq


class DatabaseWrapper(PostgresDatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed:
            return False
        info = connection.info
        if info.status == pq.ConnStatus.OK and info.transaction_status == pq.TransactionStatus.IDLE:
            try:
                readable, _, _ = select.select([connection.fileno()], [], [], 0)
            except (OSError, ValueError):
                return False
            if not readable:
                return True
        return super().is_usable()
