"""Why a task is not dialling now, as far as its row and its queue tell (the task page)."""

from __future__ import annotations

from datetime import datetime

from ringback.domain.calling_hours import CallingHours
from ringback.domain.frequency_caps import CAP_REASON
from ringback.domain.model import TaskStatus
from ringback.domain.rows import QueueRow, TaskRow


def _at(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def hours_of(queue: QueueRow) -> str:
    """The queue's calling hours in their compact form ('' when it has none)."""
    if not queue.calling_hours:
        return ""
    try:
        return CallingHours.parse(queue.calling_hours).describe()
    except ValueError:
        return "(unreadable)"


def _holidays(queue: QueueRow, task: TaskRow, now: datetime, until: datetime) -> str:
    """``; holiday: Christmas (12-25)`` for the holidays the task waits over ('' if none)."""
    try:
        calling = CallingHours.parse(queue.calling_hours or "")
        skipped = calling.holidays_until(now, until, task.timezone)
    except ValueError:
        return ""
    if not skipped:
        return ""
    return "; holiday: " + ", ".join(holiday.describe() for holiday in skipped)


def why_not_dialling(task: TaskRow, queue: QueueRow, now: datetime) -> str | None:
    """One sentence, or None when the task is dialling now, will be at once, or finished."""
    if task.status in (TaskStatus.FINISHED.value, TaskStatus.EXECUTED.value):
        return None  # done (its result says how), or a call is under way
    if queue.status != "on":
        return f"its queue {queue.name!r} is switched off"
    if task.run_at > now:
        if task.status == TaskStatus.DELAYED_INTERVAL.value:
            return (
                f"outside the queue's calling hours ({hours_of(queue)}): next at "
                f"{_at(task.run_at)}{_holidays(queue, task, now, task.run_at)}"
            )
        if (task.finish_comment or "").startswith(CAP_REASON):  # a frequency cap's wait
            return task.finish_comment
        if task.tries_used:
            attempt = f"try {task.tries_used + 1} of {task.max_tries}"
            return f"waiting to try again ({attempt}) at {_at(task.run_at)}"
        return f"starts at {_at(task.run_at)}"
    if task.status == TaskStatus.DELAYED_CONCURRENT_TASK.value:
        return (
            f"its queue is at its limit of {queue.concurrent_task_limit} call(s) at once: "
            "it starts when one ends"
        )
    if queue.calling_hours:
        try:
            calling = CallingHours.parse(queue.calling_hours)
            if not calling.is_open(now, task.timezone):
                opening = calling.next_opening(now, task.timezone)
                return (
                    f"outside the queue's calling hours ({calling.describe()}): opens at "
                    f"{_at(opening)}{_holidays(queue, task, now, opening)}"
                )
        except ValueError:
            pass
    return None
