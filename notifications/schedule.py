"""When reminders fall due: pure functions of a task, a plan's policy, a zone and an instant.

Every step falls due at 09:00 in the RECIPIENT's time zone on its day:

- before the due date (`due_soon`, and `due_today` for 0): on `due_date - N`, for N in the
  policy's `before_days`, as long as that 09:00 comes before the deadline (the end of the due
  date in the PLAN's zone, `Task.deadline_at`);
- overdue (open and past `deadline_at`): "day 0" is the day of the first 09:00 at or after the
  deadline; overdue reminders on day 0 and every `overdue_every_days` after (step = period,
  1, 2, ...); the manager escalation on day 0 + `escalate_manager_after_days`, the
  coordinators' on day 0 + `escalate_coordinators_after_days`;
- awaiting verification (done, not verified): the day of the first 09:00 at or after
  `completed_at`, plus `verification_reminder_after_days`.

Only the MOST RECENT due step of a series is produced (a sweep after an outage does not send
the steps it missed), and a before-due step whose day came before the task existed in its
current form (created, or its due date last moved) is not sent late. Days are counted on the
recipient's calendar, so a daylight-saving change moves nothing.

These functions are the executable statement of the rules and the SQLite sweep. On
PostgreSQL the sweep is one INSERT ... SELECT (`services.REMINDERS_INSERT_SQL`) computing
the same rows; tests/notifications/test_reminders_sql.py holds the two equal.
"""

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache

NINE = dt.time(9)

OPEN = ("planned", "in_progress", "at_risk", "blocked")
DONE = "done"

DUE_SOON, DUE_TODAY, OVERDUE = "due_soon", "due_today", "overdue"
ESCALATION_MANAGER, ESCALATION_COORDINATORS = "escalation_manager", "escalation_coordinators"
AWAITING_VERIFICATION = "awaiting_verification"


@lru_cache(maxsize=512)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def nine_on(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """09:00 on `day` in `tz`, in UTC."""
    return dt.datetime.combine(day, NINE, tzinfo=tz).astimezone(dt.UTC)


def first_nine_day(instant: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.date:
    """The local day of the first 09:00 in `tz` at or after `instant`."""
    day = instant.astimezone(tz).date()
    return day if nine_on(day, tz) >= instant else day + dt.timedelta(days=1)


def cutoff_date(now: dt.datetime, tz: zoneinfo.ZoneInfo, whole_day: bool = False) -> dt.date:
    """The latest local day whose 09:00 has passed at `now` (with `whole_day`: today, as if
    it were 09:00 already)."""
    today = now.astimezone(tz).date()
    if whole_day or nine_on(today, tz) <= now:
        return today
    return today - dt.timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    before_days: tuple[int, ...]  # any order; unique, >= 0
    overdue_every_days: int
    escalate_manager_after_days: int | None
    escalate_coordinators_after_days: int | None
    verification_reminder_after_days: int | None

    @classmethod
    def of(cls, policy) -> "Policy":
        return cls(
            before_days=tuple(sorted(set(policy.before_days or ()))),
            overdue_every_days=policy.overdue_every_days,
            escalate_manager_after_days=policy.escalate_manager_after_days,
            escalate_coordinators_after_days=policy.escalate_coordinators_after_days,
            verification_reminder_after_days=policy.verification_reminder_after_days,
        )


@dataclass(frozen=True)
class TaskFacts:
    due_date: dt.date
    deadline_at: dt.datetime
    status: str
    completed_at: dt.datetime | None
    # When the task took its current due date: created, or its deadline last moved.
    anchor_at: dt.datetime


@dataclass(frozen=True)
class Due:
    kind: str
    step: int
    due_at: dt.datetime


def due_reminders(
    task: TaskFacts,
    policy: Policy,
    tz: zoneinfo.ZoneInfo,
    now: dt.datetime,
    whole_day: bool = False,
) -> list[Due]:
    """The reminders of `task` due at `now` for a recipient in `tz`, one per series at most."""
    cutoff = cutoff_date(now, tz, whole_day)
    found: list[Due] = []
    if task.status in OPEN and now < task.deadline_at:
        for days in policy.before_days:  # ascending: the first due step is the most recent
            day = task.due_date - dt.timedelta(days=days)
            at = nine_on(day, tz)
            if at >= task.deadline_at or day > cutoff:
                continue
            if day >= task.anchor_at.astimezone(tz).date():
                found.append(Due(DUE_TODAY if days == 0 else DUE_SOON, days, at))
            break
    elif task.status in OPEN:
        day0 = first_nine_day(task.deadline_at, tz)
        if day0 <= cutoff:
            every = policy.overdue_every_days
            period = (cutoff - day0).days // every if every else 0
            found.append(
                Due(OVERDUE, period + 1, nine_on(day0 + dt.timedelta(days=period * every), tz))
            )
            for kind, days in (
                (ESCALATION_MANAGER, policy.escalate_manager_after_days),
                (ESCALATION_COORDINATORS, policy.escalate_coordinators_after_days),
            ):
                if days is not None and day0 + dt.timedelta(days=days) <= cutoff:
                    found.append(Due(kind, days, nine_on(day0 + dt.timedelta(days=days), tz)))
    elif (
        task.status == DONE
        and task.completed_at is not None
        and policy.verification_reminder_after_days is not None
    ):
        day = first_nine_day(task.completed_at, tz) + dt.timedelta(
            days=policy.verification_reminder_after_days
        )
        if day <= cutoff:
            found.append(
                Due(
                    AWAITING_VERIFICATION, policy.verification_reminder_after_days, nine_on(day, tz)
                )
            )
    return found
