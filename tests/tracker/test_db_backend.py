"""The PostgreSQL backend's health check (tracker/db/postgresql): no round trip for an idle
connection with nothing to read, and a connection the server closed is found unusable."""

import time

import psycopg
import pytest
from django.db import connection

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's backend only"
)


@pytest.mark.django_db(transaction=True)
def test_idle_connection_is_usable_without_a_query_and_a_killed_one_is_not():
    connection.ensure_connection()
    raw = connection.connection
    pid = raw.info.backend_pid
    with raw.cursor() as cursor:
        cursor.execute("SELECT 'marker-before-check'")
    assert connection.is_usable()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        # The check sent nothing: the session's last statement is still the marker.
        last = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        assert last[0] == "SELECT 'marker-before-check'"
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not connection.is_usable()
    connection.close()
    connection.ensure_connection()  # Django reconnects
    assert connection.is_usable()
