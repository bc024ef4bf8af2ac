"""The weekly report's sections from history rows: what the history does not hold is shown as such."""

from datetime import datetime

from phase8_assets.domains.weekly import sections


def test_an_slo_not_evaluated_this_week_shows_no_alert_counts_rather_than_zero():
    week = {
        "benchmarks": [],
        "change_points": [],
        "drills": {"runs": [], "overdue": []},
        "gate_runs": [],
        # evaluated last week only: this week's remaining, page and ticket counts are NULL
        "slos": [("chat-api-availability", "chat-api", 0.999, None, 0.42, None, None)],
    }
    (slo,) = [s for s in sections(week, datetime(2026, 11, 16), datetime(2026, 11, 23)) if s.heading.startswith("SLOs")]
    headers, (row,) = slo.table
    assert dict(zip(headers, row, strict=True)) == {
        "slo": "chat-api-availability", "service": "chat-api", "target": "99.900%", "remaining": "—",
        "a week earlier": "42.0%", "page alerts": "—", "ticket alerts": "—",
    }  # fmt: skip
