"""Events the plan domain announces after commit; other apps (notifications) listen.

`task_changed` is sent with `event` (task.created, task.updated, task.status_changed,
status_update.created), `task_id` and event-specific keyword arguments.
"""

from django.dispatch import Signal

task_changed = Signal()
