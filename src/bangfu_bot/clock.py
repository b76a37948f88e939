"""An injectable clock, so tests and the sandbox can move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current instant (always timezone-aware UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        """Current instant in UTC."""
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (tests, sandbox time travel)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 30, 2, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The instant the clock was last set to."""
        return self._now

    def advance(self, **delta: float) -> datetime:
        """Move forward by a timedelta's keyword arguments (days=, hours=, seconds=)."""
        self._now += timedelta(**delta)
        return self._now

    def set(self, instant: datetime) -> None:
        """Jump to an instant."""
        self._now = instant


class OffsetClock:
    """Real time plus an offset the sandbox can move forward (to see reminders and notice
    periods end), never backward. The sandbox keeps the offset in the database and gives it
    back at start (sandbox/clock.py), so a restart does not take the clock back to today."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        """Current instant plus the offset."""
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> datetime:
        """Jump ahead by a timedelta's keyword arguments (days=, hours=)."""
        step = timedelta(**delta)
        if step < timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        self.offset += step
        return self.now()
