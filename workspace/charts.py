"""Geometry of the dashboard's SVG charts, from figures already computed (no query, no rule).

The charts are drawn by templates (`workspace/_chart_*.html`) from what these functions
return. Horizontal positions are percentages of the chart's width, so one SVG fits 1280 px,
768 px and an A4 page alike while its text keeps its size; vertical positions are pixels.
Coordinates are returned as strings, never localized by the template engine.
"""

import datetime as dt
from dataclasses import dataclass


def pct(value: float) -> str:
    return f"{max(0.0, min(100.0, value)):.3f}%"


@dataclass(frozen=True)
class Geometry:
    """Row sizes in pixels: the screen's, or the print view's tighter ones."""

    row: int  # one labelled bar: a text line above its bar
    text: int  # baseline of the label in its row
    bar_y: int  # top of the bar in its row
    bar: int  # bar height
    stack: int  # height of a single stacked bar
    axis: int  # timeline axis band
    group: int  # timeline workstream heading
    task: int  # timeline task row
    task_bar: int
    more: int  # timeline "and N more" row
    line: int  # an extra text line in a labelled bar's row


SCREEN = Geometry(row=40, text=15, bar_y=21, bar=12, stack=28, axis=34, group=26, task=20,
                  task_bar=11, more=18, line=18)  # fmt: skip
PRINT = Geometry(row=30, text=12, bar_y=16, bar=9, stack=20, axis=28, group=19, task=15,
                 task_bar=9, more=14, line=13)  # fmt: skip


def labelled_bars(
    items: list[dict], *, scale: float | None = None, lines: int = 1, geometry=SCREEN
) -> dict:
    """Bars with their label above them (`lines` lines of text), one per item.

    Each item: `segments` [(css class, value)] and what the template shows. A bar's segments
    are laid end to end; `scale` is the value of the full width (default: the largest bar).
    """
    extra = (lines - 1) * geometry.line
    row_height = geometry.row + extra
    largest = max((sum(v for _c, v in item["segments"]) for item in items), default=0)
    scale = scale or largest or 1
    rows = []
    for index, item in enumerate(items):
        top = index * row_height
        x, segments = 0.0, []
        for css, value in item["segments"]:
            width = 100 * value / scale
            if width > 0:
                segments.append({"css": css, "x": pct(x), "width": pct(width)})
            x += width
        rows.append(
            {
                **item,
                "text_y": top + geometry.text,
                "text2_y": top + geometry.text + geometry.line,
                "bar_y": top + geometry.bar_y + extra,
                "segments": segments,
            }
        )
    return {
        "rows": rows,
        "height": max(1, len(items)) * row_height,
        "bar": geometry.bar,
    }


def stacked_bar(segments: list[tuple[str, int]], *, geometry=SCREEN) -> dict:
    """One bar split by value (e.g. tasks by status), each part a share of the total."""
    total = sum(value for _css, value in segments)
    x, parts = 0.0, []
    for css, value in segments:
        if value and total:
            width = 100 * value / total
            parts.append({"css": css, "x": pct(x), "width": pct(width), "value": value})
            x += width
    return {"parts": parts, "height": geometry.stack, "total": total}


def _quarter_starts(start: dt.date, end: dt.date):
    day = dt.date(start.year, ((start.month - 1) // 3) * 3 + 1, 1)
    while day <= end:
        if day >= start:
            yield day
        month = day.month + 3
        day = dt.date(day.year + (month > 12), (month - 1) % 12 + 1, 1)


LABEL_SHARE = 30.0  # % of the width kept for the task labels


def timeline(
    groups, *, period_start: dt.date, period_end: dt.date, today: dt.date, geometry=SCREEN
) -> dict:
    """A Gantt-like chart: one bar per drawn task from its start to the end of its due date,
    grouped by workstream, against the plan's period, with today marked.

    `groups` are dashboard.TimelineGroup (workstream, tasks, more).
    """
    starts = [t.start_date or t.due_date for g in groups for t in g.tasks]
    ends = [t.due_date for g in groups for t in g.tasks]
    first = min([period_start, *starts])
    last = max([period_end, *ends]) + dt.timedelta(days=1)
    span = max(1, (last - first).days)
    area = 100 - LABEL_SHARE

    def x(day: dt.date) -> float:
        return LABEL_SHARE + area * (day - first).days / span

    quarters = list(_quarter_starts(first, last - dt.timedelta(days=1)))
    ticks = []
    for day in quarters:
        ticks.append(
            {
                "x": pct(x(day)),
                "year": day.year if day.month == 1 or day == quarters[0] else None,
                "quarter": f"Q{(day.month - 1) // 3 + 1}" if len(quarters) <= 16 else "",
                "label_x": pct(x(day) + 0.6),
            }
        )
    rows, y = [], geometry.axis
    for group in groups:
        rows.append({"kind": "group", "group": group, "y": y, "text_y": y + geometry.group - 6})
        y += geometry.group
        for task in group.tasks:
            begin = task.start_date or task.due_date
            left, right = x(begin), x(task.due_date + dt.timedelta(days=1))
            width = max(right - left, 0.4)
            rows.append(
                {
                    "kind": "task",
                    "task": task,
                    "group": group,
                    "y": y,
                    "text_y": y + geometry.task - 4,
                    "bar_y": y + (geometry.task - geometry.task_bar) // 2,
                    "x": pct(left),
                    "width": pct(width),
                    "done_width": pct(width * (task.progress or 0) / 100),
                }
            )
            y += geometry.task
        if group.more:
            rows.append({"kind": "more", "group": group, "y": y, "text_y": y + geometry.more - 4})
            y += geometry.more
    today_x = x(today) if first <= today < last else None
    if today_x is None:
        today_anchor = "middle"
    elif today_x > 90:
        today_anchor = "end"
    elif today_x < LABEL_SHARE + 8:
        today_anchor = "start"
    else:
        today_anchor = "middle"
    return {
        "rows": rows,
        "ticks": ticks,
        "height": y + geometry.more + 6,  # room for today's label under the bars
        "today_y": y + geometry.more + 2,
        "bars_end": y + 2,
        "axis": geometry.axis,
        "body_height": y + 2 - geometry.axis,
        "bar": geometry.task_bar,
        "label_share": pct(LABEL_SHARE - 1),
        "period_x": pct(x(period_start)),
        "period_width": pct(x(period_end + dt.timedelta(days=1)) - x(period_start)),
        "today_x": pct(today_x) if today_x is not None else None,
        "today_anchor": today_anchor,
        "first": first,
        "last": last - dt.timedelta(days=1),
    }
