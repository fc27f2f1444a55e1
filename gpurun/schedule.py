"""Next fire time of an EventBridge Scheduler expression in its time zone.

cron(minutes hours day-of-month month day-of-week year), as EventBridge defines it: day-of-month
or day-of-week must be ``?``; day-of-week is 1-7 = SUN-SAT or SUN..SAT; ``*``, lists, ranges,
``/`` steps, ``L`` (last day of the month) and ``#`` (nth weekday of the month) are understood.
``W`` and ``L`` in day-of-week are refused with a message rather than guessed.
"""

from __future__ import annotations

import calendar
import dataclasses
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {name: n for n, name in enumerate(calendar.month_abbr) if name}
_MONTHS = {k.upper(): v for k, v in _MONTHS.items()}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_SEARCH_YEARS = 5


class ScheduleError(ValueError):
    """The expression cannot be understood; the message names the field."""


@dataclasses.dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None: "?" (or "*" with day-of-week "?")
    last_day_of_month: bool
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # 1 = Sunday .. 7 = Saturday
    nth_weekday: tuple[int, int] | None  # (weekday 1-7, n 1-5)
    years: frozenset[int] | None

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.years is not None and day.year not in self.years:
            return False
        weekday = (day.isoweekday() % 7) + 1  # Monday=1 in ISO -> 2 here; Sunday -> 1
        if self.nth_weekday is not None:
            wanted, n = self.nth_weekday
            return weekday == wanted and (day.day - 1) // 7 + 1 == n
        if self.days_of_week is not None:
            return weekday in self.days_of_week
        if self.last_day_of_month:
            return day.day == calendar.monthrange(day.year, day.month)[1]
        return self.days_of_month is None or day.day in self.days_of_month


def _value(token: str, names: dict[str, int], field: str) -> int:
    if token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        raise ScheduleError(f"{field}: {token!r} is not a number or a name")
    return int(token)


def _field(
    text: str, low: int, high: int, field: str, names: dict[str, int] | None = None
) -> frozenset[int]:
    names = names or {}
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        span = part
        if "/" in part:
            span, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"{field}: step {step_text!r} must be a whole number >= 1")
            step = int(step_text)
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, last = span.split("-", 1)
            start, end = _value(first, names, field), _value(last, names, field)
        else:
            start = _value(span, names, field)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ScheduleError(f"{field}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_cron(expression: str) -> Cron:
    """Parse ``cron(...)``; raises ScheduleError naming the bad field."""
    match = re.fullmatch(r"cron\((.*)\)", expression.strip())
    if not match:
        raise ScheduleError(f"{expression!r} is not a cron(...) expression")
    parts = match.group(1).split()
    if len(parts) != 6:
        raise ScheduleError(
            f"{expression!r} has {len(parts)} fields; cron() takes 6: minutes hours "
            "day-of-month month day-of-week year"
        )
    minute, hour, dom, month, dow, year = parts
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
    if "W" in dom.upper() or ("L" in dow.upper() and dow.upper() != "L"):
        raise ScheduleError(f"'W' and 'L' in day-of-week are not supported here ({expression})")
    nth: tuple[int, int] | None = None
    days_of_week: frozenset[int] | None = None
    if dow != "?":
        if "#" in dow:
            weekday, n = dow.split("#", 1)
            if not n.isdigit() or not 1 <= int(n) <= 5:
                raise ScheduleError(f"day-of-week: {dow!r}: the week number must be 1-5")
            nth = (_value(weekday, _DAYS, "day-of-week"), int(n))
        elif dow != "*":
            days_of_week = _field(dow, 1, 7, "day-of-week", _DAYS)
    return Cron(
        minutes=_field(minute, 0, 59, "minutes"),
        hours=_field(hour, 0, 23, "hours"),
        days_of_month=None if dom in ("?", "*", "L") else _field(dom, 1, 31, "day-of-month"),
        last_day_of_month=dom.upper() == "L",
        months=_field(month, 1, 12, "month", _MONTHS),
        days_of_week=days_of_week,
        nth_weekday=nth,
        years=None if year in ("*", "?") else _field(year, 1970, 2199, "year"),
    )


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"time zone {name!r} is not an IANA time zone name") from exc


def next_fire(expression: str, timezone: str | None, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (UTC), or None if there is none.

    rate() schedules fire relative to their creation, which the API does not return: None.
    """
    text = expression.strip()
    tz = zone(timezone)
    if text.startswith("rate("):
        return None
    at = re.fullmatch(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)", text)
    if at:
        when = datetime.fromisoformat(at.group(1)).replace(tzinfo=tz).astimezone(UTC)
        return when if when > after else None
    cron = parse_cron(text)
    local_after = after.astimezone(tz)
    day = local_after.date()
    times = sorted(time(h, m) for h in cron.hours for m in cron.minutes)
    for _ in range(366 * _SEARCH_YEARS):
        if cron.matches_day(day):
            for moment in times:
                candidate = datetime.combine(day, moment, tzinfo=tz).astimezone(UTC)
                if candidate > after:
                    return candidate
        day += timedelta(days=1)
    return None
