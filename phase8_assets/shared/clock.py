"""The one clock: evaluation time and timestamp parsing.

Evaluation time is ``--as-of`` > the config's pinned time > now. Every time-dependent rule takes
the evaluation time as an argument; nothing else in the package calls ``datetime.now``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class TimeParseError(ValueError):
    """A timestamp or duration that could not be parsed."""


@dataclass(frozen=True)
class Instant:
    """A parsed timestamp, always timezone-aware UTC, remembering whether the source was naive."""

    at: datetime
    was_naive: bool


def now_utc() -> datetime:
    return datetime.now(UTC)


def parse_timestamp(value: object, what: str = "timestamp") -> Instant:
    """Parse an ISO 8601 / RFC 3339 timestamp (or a date) into UTC.

    Naive timestamps are taken as UTC and flagged so callers can warn about them.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise TimeParseError(f"{what}: expected an ISO 8601 timestamp, got {value!r}") from exc
    else:
        raise TimeParseError(f"{what}: expected an ISO 8601 timestamp, got {value!r}")
    if dt.tzinfo is None:
        return Instant(dt.replace(tzinfo=UTC), True)
    return Instant(dt.astimezone(UTC), False)


def evaluation_time(as_of: str | None, pinned: str | None, now: datetime | None = None) -> datetime:
    """``--as-of`` wins over the config's pinned time, which wins over the wall clock; both must be
    full timestamps with their zone (``zoned_timestamp``)."""
    if as_of:
        return zoned_timestamp(as_of, "--as-of")
    if pinned:
        return zoned_timestamp(pinned, "evaluation_time")
    return (now or now_utc()).astimezone(UTC)


def zoned_timestamp(value: object, what: str) -> datetime:
    """An evaluation time a person typed (``--as-of``, the config's ``evaluation_time``), in UTC. A
    date alone, in any of the forms ISO 8601 allows (``2026-11-20``, ``20261120`` as ``date +%Y%m%d``
    writes it, ``2026-W47-5``), would silently mean midnight UTC, and a time without a zone UTC where
    whoever typed it may have meant their local time: both are refused, naming ``what``."""
    text = str(value)
    examples = "e.g. 2026-11-20T12:00:00Z or 2026-11-20T13:00:00+01:00"
    if is_date_only(text):
        raise TimeParseError(f"{what}: expected a timestamp with a time, {examples}; got the date {text!r}")
    try:
        parsed = parse_timestamp(text, what)
    except TimeParseError:
        raise TimeParseError(f"{what}: expected an ISO 8601 timestamp, {examples}; got {text!r}") from None
    if parsed.was_naive:  # UTC or the runner's local time? Twelve hours either way decide what is stale.
        raise TimeParseError(f"{what}: expected a time zone (Z or an offset), {examples}; got {text!r}")
    return parsed.at


def is_date_only(text: str) -> bool:
    """Whether ``text`` is a date without a time in one of the forms ISO 8601 allows (``2026-11-20``,
    ``20261120``, ``2026-W47-5``): as an evaluation time it would silently mean midnight UTC."""
    if re.search(r"\d[Tt ]\d", text.strip()):
        return False
    try:
        parse_timestamp(text)
    except TimeParseError:
        return False
    return True


def parse_duration(value: str, what: str = "duration") -> timedelta:
    """Parse an ISO 8601 duration such as ``P7D``, ``PT36H`` or ``P1M`` (a month counts 30 days)."""
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if not match or value.strip() in ("P", "PT") or value.strip().endswith("T"):
        raise TimeParseError(f"{what}: expected an ISO 8601 duration like P7D or PT12H, got {value!r}")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return timedelta(
        days=parts["years"] * 365 + parts["months"] * 30 + parts["weeks"] * 7 + parts["days"],
        hours=parts["hours"],
        minutes=parts["minutes"],
        seconds=parts["seconds"],
    )


def add_duration(at: datetime, value: str, what: str = "duration") -> datetime:
    """``at`` plus an ISO 8601 duration, counting years and months on the calendar.

    ``P1M`` after 31 January is the last day of February; ``parse_duration`` (30-day months) is
    for ages and windows, this is for due dates ("monthly" means the same day next month).
    """
    parse_duration(value, what)  # validates
    parts = {k: float(v) if v else 0.0 for k, v in _DURATION.match(value.strip()).groupdict().items()}
    months = int(parts["years"]) * 12 + int(parts["months"])
    if months:
        index = at.month - 1 + months
        year, month = at.year + index // 12, index % 12 + 1
        at = at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))
    return at + timedelta(
        weeks=parts["weeks"],
        days=parts["days"],
        hours=parts["hours"],
        minutes=parts["minutes"],
        seconds=parts["seconds"],
    )


def format_timestamp(dt: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, seconds precision: the form every report uses."""
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def format_duration(delta: timedelta) -> str:
    """A short human form: ``3d 4h``, ``5h 12m``, ``42m``."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    return f"{sign}{minutes}m"
