"""Events of the identity app; other apps listen (tracker imports none of them).

`access_revoked` is sent with `user` inside the transaction that took away the user's last
membership: listeners revoke what they hold for that person (notifications: the calendar
feed), so it all commits or rolls back together.
"""

from django.dispatch import Signal

access_revoked = Signal()
