"""CronJob schedules: robfig/cron's parser and its next-activation arithmetic."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest

from control.resources import cron

T = datetime(2026, 11, 25, 10, 7, 30, tzinfo=UTC)  # a Wednesday


def nexts(spec: str, start: datetime = T, count: int = 3, zone=UTC) -> list[str]:
    schedule = cron.parse(spec)
    found, moment = [], start
    for _ in range(count):
        moment = schedule.next(moment, zone=zone)
        found.append(moment.strftime("%a %d %H:%M"))
    return found


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("* * * * *", ["Wed 25 10:08", "Wed 25 10:09", "Wed 25 10:10"]),
        ("*/15 * * * *", ["Wed 25 10:15", "Wed 25 10:30", "Wed 25 10:45"]),
        ("0 9 * * mon-fri", ["Thu 26 09:00", "Fri 27 09:00", "Mon 30 09:00"]),
        ("30 2 1 * *", ["Tue 01 02:30", "Fri 01 02:30", "Mon 01 02:30"]),
        # both day fields restricted: either matches (the 28th, or any Friday)
        ("0 0 28 * 5", ["Fri 27 00:00", "Sat 28 00:00", "Fri 04 00:00"]),
        # a bare * in one day field leaves the other alone: only Fridays
        ("0 0 * * 5", ["Fri 27 00:00", "Fri 04 00:00", "Fri 11 00:00"]),
        ("@hourly", ["Wed 25 11:00", "Wed 25 12:00", "Wed 25 13:00"]),
        ("@weekly", ["Sun 29 00:00", "Sun 06 00:00", "Sun 13 00:00"]),
        ("5,10-12 8 * jan,nov *", ["Thu 26 08:05", "Thu 26 08:10", "Thu 26 08:11"]),
    ],
)
def test_next_activations(spec: str, expected: list[str]) -> None:
    assert nexts(spec) == expected


def test_every_and_time_zones() -> None:
    every = cron.parse("@every 90s")
    assert every.next(T, zone=UTC) == (T + timedelta(seconds=90)).replace(microsecond=0)
    tokyo = cron.parse("TZ=Asia/Tokyo 0 9 * * *")
    assert tokyo.next(T, zone=UTC) == datetime(2026, 11, 26, 9, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo"))
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    assert cron.parse("0 12 * * *").next(T, zone=berlin).astimezone(UTC) == datetime(
        2026, 11, 25, 11, 0, tzinfo=UTC
    )


def test_a_schedule_that_never_comes_gives_none() -> None:
    assert cron.parse("0 0 30 2 *").next(T, zone=UTC) is None  # February 30th


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("61 * * * *", "end of range (61) above maximum (59): 61"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("TZ=Mars/Olympus * * * * *", "provided bad location Mars/Olympus: unknown time zone Mars/Olympus"),
    ],
)
def test_errors_carry_robfig_cron_wording(spec: str, message: str) -> None:
    with pytest.raises(cron.CronError) as error:
        cron.parse(spec)
    assert str(error.value) == message
