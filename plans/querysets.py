"""Scopes and annotations of the plan domain: overdue and rolled-up progress.

Overdue = open and past the end of the due date in the plan's time zone. That instant is
stored on each task as `deadline_at` (UTC), so overdue is one indexed comparison on any
database.
"""

import datetime as dt

from django.db import models
from django.db.models import Avg, Count, ExpressionWrapper, FloatField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

OPEN = ("planned", "in_progress", "at_risk", "blocked")
CANCELLED = "cancelled"


def _overdue_q(now: dt.datetime | None = None, prefix: str = "") -> Q:
    return Q(**{f"{prefix}status__in": OPEN, f"{prefix}deadline_at__lte": now or timezone.now()})


class TaskQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=OPEN)

    def overdue(self, now: dt.datetime | None = None):
        return self.filter(_overdue_q(now))

    def not_overdue(self, now: dt.datetime | None = None):
        return self.exclude(_overdue_q(now))

    def with_overdue(self, now: dt.datetime | None = None):
        return self.annotate(
            is_overdue=ExpressionWrapper(_overdue_q(now), output_field=models.BooleanField())
        )


def _rollup(key: str, now: dt.datetime | None, tasks: models.QuerySet | None) -> dict:
    """Annotations rolling tasks up to the row whose pk the task's `key` points to.

    Cancelled tasks do not count. `tasks` narrows the tasks counted (e.g. to those a user may
    see). Subqueries keep one row per parent whatever the joins.
    """
    from .models import Task

    tasks = (
        (Task.objects.all() if tasks is None else tasks)
        .filter(**{key: OuterRef("pk")})
        .exclude(status=CANCELLED)
        .order_by()
        .values(key)
    )

    def aggregate(qs, expression, output_field):
        return Coalesce(
            Subquery(qs.annotate(value=expression).values("value")[:1], output_field=output_field),
            0,
            output_field=output_field,
        )

    return {
        "task_count": aggregate(tasks, Count("pk"), models.IntegerField()),
        "done_count": aggregate(
            tasks.filter(status__in=("done", "verified")), Count("pk"), models.IntegerField()
        ),
        "overdue_count": aggregate(
            tasks.filter(_overdue_q(now)), Count("pk"), models.IntegerField()
        ),
        "progress_rollup": aggregate(tasks, Avg("progress"), FloatField()),
    }


class PlanQuerySet(models.QuerySet):
    def with_progress(self, now: dt.datetime | None = None, tasks=None):
        return self.annotate(**_rollup("plan", now, tasks))


class WorkstreamQuerySet(models.QuerySet):
    def with_progress(self, now: dt.datetime | None = None, tasks=None):
        return self.annotate(**_rollup("workstream", now, tasks))


class OutcomeQuerySet(models.QuerySet):
    def with_progress(self, now: dt.datetime | None = None, tasks=None):
        return self.annotate(**_rollup("source_outcomes", now, tasks))


class StatusUpdateQuerySet(models.QuerySet):
    def update(self, **kwargs):
        from .models import APPEND_ONLY

        raise TypeError(APPEND_ONLY)

    def delete(self):
        from .models import APPEND_ONLY

        raise TypeError(APPEND_ONLY)
