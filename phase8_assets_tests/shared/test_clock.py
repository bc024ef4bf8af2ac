from datetime import UTC, datetime, timedelta

import pytest

from phase8_assets.shared.clock import TimeParseError, evaluation_time, parse_duration, parse_timestamp

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def test_as_of_beats_pinned_beats_now():
    assert evaluation_time("2026-01-02T03:04:05Z", "2025-01-01T00:00:00Z", NOW) == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert evaluation_time(None, "2025-01-01T00:00:00+02:00", NOW) == datetime(2024, 12, 31, 22, tzinfo=UTC)
    assert evaluation_time(None, None, NOW) == NOW


def test_as_of_needs_a_time_and_its_error_gives_examples():
    with pytest.raises(TimeParseError, match=r"--as-of: expected a timestamp with a time, e\.g\. 2026-11-20T12:00:00Z"):
        evaluation_time("2026-11-20", None, NOW)
    # The other date-only forms Python's ISO parser takes: `date +%Y%m%d` and a week date.
    for date_only in ("20261120", "2026-W47-5", " 2026-11-20 "):
        with pytest.raises(TimeParseError, match=rf"with a time, .*; got the date '{date_only}'"):
            evaluation_time(date_only, None, NOW)
    for with_time in ("20261120T120000Z", "2026-11-20 12:00Z", "2026-11-20T12:00:00+0100"):
        assert evaluation_time(with_time, None, NOW).hour in (11, 12)
    with pytest.raises(TimeParseError, match=r"e\.g\. 2026-11-20T12:00:00Z or .*; got 'yesterday'"):
        evaluation_time("yesterday", None, NOW)
    # A time without a zone: UTC, or the runner's local time? Refused rather than guessed.
    for naive in ("2026-11-20T12:00:00", "20261120T120000", "2026-11-20 12:00"):
        with pytest.raises(
            TimeParseError, match=rf"--as-of: expected a time zone \(Z or an offset\), .*; got '{naive}'"
        ):
            evaluation_time(naive, None, NOW)


def test_naive_timestamps_are_utc_and_flagged():
    instant = parse_timestamp("2020-06-05T09:13:58.085110")
    assert instant.was_naive and instant.at == datetime(2020, 6, 5, 9, 13, 58, 85110, tzinfo=UTC)
    assert not parse_timestamp("2025-11-15T11:51:49.548396-05:00").was_naive
    assert parse_timestamp("2026-05-10").at == datetime(2026, 5, 10, tzinfo=UTC)


def test_invalid_timestamp_says_what_was_expected():
    # Hour 30 appears in a real FOCUS spec file.
    with pytest.raises(TimeParseError, match=r"start: expected an ISO 8601 timestamp, got '2023-02-01T30:00:00Z'"):
        parse_timestamp("2023-02-01T30:00:00Z", "start")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P7D", timedelta(days=7)),
        ("PT36H", timedelta(hours=36)),
        ("P1M", timedelta(days=30)),
        ("P1W", timedelta(days=7)),
        ("P1DT30M", timedelta(days=1, minutes=30)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["7d", "P", "PT", "P1DT", "1 week", ""])
def test_bad_durations(text):
    with pytest.raises(TimeParseError, match="expected an ISO 8601 duration"):
        parse_duration(text)
