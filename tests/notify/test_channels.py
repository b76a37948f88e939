"""Channels: quiet hours either way round midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bangfu_bot.notify.channels import quiet_until
from bangfu_bot.notify.outbox import DeliveryRules
from bangfu_bot.settings import load_settings

HALF_HOURS = [time(minute // 60, minute % 60) for minute in range(0, 24 * 60, 30)]
# Just before, on and just after each half-hour, and between two of them.
NUDGES = [
    timedelta(microseconds=-1),
    timedelta(0),
    timedelta(microseconds=1),
    timedelta(minutes=15),
]


def windows(crossing_midnight: bool) -> st.SearchStrategy[tuple[time, time]]:
    """Quiet windows from one half-hour to another: crossing midnight (21:00-08:00) or not
    (12:00-14:00)."""
    pairs = st.tuples(st.sampled_from(HALF_HOURS), st.sampled_from(HALF_HOURS))
    return pairs.filter(
        lambda pair: pair[0] != pair[1] and (pair[0] > pair[1]) == crossing_midnight
    )


def minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


@pytest.mark.parametrize("crossing_midnight", [True, False], ids=["crossing", "within-a-day"])
@settings(max_examples=500)
@given(
    data=st.data(),
    day=st.dates(date(2026, 1, 1), date(2027, 12, 31)),
    half_hour=st.sampled_from(HALF_HOURS),
    nudge=st.sampled_from(NUDGES),
)
def test_a_non_urgent_send_waits_exactly_until_the_quiet_hours_end(
    crossing_midnight: bool, data: st.DataObject, day: date, half_hour: time, nudge: timedelta
) -> None:
    start, end = data.draw(windows(crossing_midnight), label="quiet window")
    rules = DeliveryRules.from_settings(
        load_settings({"BANGFU_QUIET_HOURS": f"{start:%H:%M}-{end:%H:%M}"})
    )
    local = datetime.combine(day, half_hour, tzinfo=rules.tz) + nudge
    at = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 60e6

    if crossing_midnight:
        quiet = at >= minutes(start) or at < minutes(end)
    else:
        quiet = minutes(start) <= at < minutes(end)
    waits = quiet_until(local.astimezone(UTC), rules.tz, rules.quiet_start, rules.quiet_end)

    if not quiet:
        assert waits is None  # goes now
        return
    ends_on = local.date() if at < minutes(end) else local.date() + timedelta(days=1)
    assert waits == datetime.combine(ends_on, end, tzinfo=rules.tz)
    assert waits > local and waits - local <= timedelta(hours=24)


@pytest.mark.parametrize(
    ("quiet_hours", "moment", "waits_until"),
    [
        ("21:00-08:00", "20:59:59", None),
        ("21:00-08:00", "21:00", "2026-11-11 08:00"),
        ("21:00-08:00", "00:00", "2026-11-10 08:00"),
        ("21:00-08:00", "07:59:59", "2026-11-10 08:00"),
        ("21:00-08:00", "08:00", None),
        ("12:00-14:00", "11:59:59", None),
        ("12:00-14:00", "12:00", "2026-11-10 14:00"),
        ("12:00-14:00", "13:59:59", "2026-11-10 14:00"),
        ("12:00-14:00", "14:00", None),
        ("12:00-14:00", "23:30", None),
        ("00:00-06:00", "00:00", "2026-11-10 06:00"),
        ("00:00-06:00", "23:59:59", None),
        ("22:00-00:00", "23:59:59", "2026-11-11 00:00"),
        ("22:00-00:00", "00:00", None),
    ],
)
def test_the_boundaries(quiet_hours: str, moment: str, waits_until: str | None) -> None:
    rules = DeliveryRules.from_settings(load_settings({"BANGFU_QUIET_HOURS": quiet_hours}))
    local = datetime.combine(date(2026, 11, 10), time.fromisoformat(moment), tzinfo=rules.tz)
    waits = quiet_until(local.astimezone(UTC), rules.tz, rules.quiet_start, rules.quiet_end)
    expected = (
        None
        if waits_until is None
        else datetime.fromisoformat(waits_until).replace(tzinfo=rules.tz)
    )
    assert waits == expected
