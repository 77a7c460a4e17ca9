"""CronJob schedules: parsing as robfig/cron's ``ParseStandard`` (what kube-apiserver validates
with) and the next activation time as its ``SpecSchedule.Next`` (what the CronJob controller
runs on).

A schedule is five fields — minute, hour, day of month, month, day of week — each a list of
``*``/``?``, numbers, ranges ``a-b`` and steps ``/n`` (month and weekday names allowed), or a
descriptor (``@yearly``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly``,
``@every <duration>``), optionally after ``TZ=<zone>`` or ``CRON_TZ=<zone>``. When both day
fields are restricted, a day matching either one matches (cron's rule); a field written as a
bare ``*`` does not restrict. Errors carry robfig/cron's wording, which the API server's
validation reports.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("dom", 1, 31), ("month", 1, 12), ("dow", 0, 6))
NAMES = {
    "month": {
        m: i + 1
        for i, m in enumerate(
            ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
        )
    },
    "dow": {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_GO_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_YEARS_SEARCHED = 5


class CronError(ValueError):
    """The schedule does not parse; the message is robfig/cron's."""


@dataclass(frozen=True, kw_only=True)
class Schedule:
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days_of_month: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    days_of_week: frozenset[int] = frozenset()
    any_day_of_month: bool = True  # written as a bare * or ?
    any_day_of_week: bool = True
    every: timedelta | None = None  # @every <duration>
    zone: str = ""  # TZ= / CRON_TZ= in the schedule

    def next(self, after: datetime, *, zone: tzinfo) -> datetime | None:
        """The first activation strictly after ``after`` (timezone-aware), in ``zone`` (the
        schedule's own ``TZ=`` wins); None when none comes within five years."""
        if self.zone:
            zone = zoneinfo.ZoneInfo(self.zone)
        if self.every is not None:
            step = max(self.every, timedelta(seconds=1))
            return (after + step).replace(microsecond=0)
        # Work on wall-clock time in the zone, as cron does, one field at a time.
        t = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        limit = t.year + _YEARS_SEARCHED
        while t.year <= limit:
            if t.month not in self.months:
                t = _first_of_next_month(t)
                continue
            if not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            return t.replace(tzinfo=zone)
        return None

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days_of_month
        dow = (t.isoweekday() % 7) in self.days_of_week
        if self.any_day_of_month or self.any_day_of_week:
            return dom and dow
        return dom or dow


def _first_of_next_month(t: datetime) -> datetime:
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return datetime(year, month, 1)


def parse(schedule: str) -> Schedule:
    """The schedule ``ParseStandard`` accepts, or CronError with its message."""
    spec = schedule
    if not spec:
        raise CronError("empty spec string")
    zone = ""
    if spec.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, rest = spec.partition(" ")
        zone = prefix.split("=", 1)[1]
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise CronError(f"provided bad location {zone}: unknown time zone {zone}") from exc
        spec = rest.strip()
    if spec.startswith("@"):
        if spec.startswith("@every "):
            duration = spec[len("@every ") :]
            if duration == "0":
                return Schedule(every=timedelta(0), zone=zone)
            if not _GO_DURATION.match(duration):
                raise CronError(f'failed to parse duration {spec}: time: invalid duration "{duration}"')
            seconds = sum(
                float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(duration)
            )
            return Schedule(
                every=timedelta(seconds=-seconds if duration.startswith("-") else seconds), zone=zone
            )
        if spec not in DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != len(FIELDS):
        raise CronError(f"expected exactly {len(FIELDS)} fields, found {len(fields)}: [{' '.join(fields)}]")
    values: list[frozenset[int]] = []
    stars: list[bool] = []
    for text, (field, low, high) in zip(fields, FIELDS, strict=True):
        chosen: set[int] = set()
        star = False
        for expr in text.split(","):
            numbers, is_star = _range(expr, field, low, high)
            chosen.update(numbers)
            star = star or is_star
        values.append(frozenset(chosen))
        stars.append(star)
    minutes, hours, days_of_month, months, days_of_week = values
    return Schedule(
        minutes=minutes,
        hours=hours,
        days_of_month=days_of_month,
        months=months,
        days_of_week=days_of_week,
        any_day_of_month=stars[2],
        any_day_of_week=stars[4],
        zone=zone,
    )


def _int(expr: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", expr):
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax')
    number = int(expr)
    if number < 0:
        raise CronError(f"negative number ({number}) not allowed: {expr}")
    return number


def _range(expr: str, field: str, low: int, high: int) -> tuple[range, bool]:
    """robfig/cron's ``getRange``: the values one comma-separated part selects, and whether it
    is a bare ``*``/``?`` (which leaves a day field unrestricted)."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    names = NAMES.get(field, {})
    star = False
    if low_and_high[0] in ("*", "?"):
        start, end, star = low, high, True
    else:
        first = low_and_high[0].lower()
        start = names[first] if first in names else _int(low_and_high[0])
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            second = low_and_high[1].lower()
            end = names[second] if second in names else _int(low_and_high[1])
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 2:
        step = _int(range_and_step[1])
        if len(low_and_high) == 1:
            end = high
        if step > 1:
            star = False
    elif len(range_and_step) == 1:
        step = 1
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < low:
        raise CronError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise CronError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return range(start, end + 1, step), star
