"""The weekly report's sections from history rows: what the history does not hold is shown as such."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

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


EMPTY = {"benchmarks": [], "change_points": [], "drills": {"runs": [], "overdue": []}, "gate_runs": [], "slos": []}
COST = [("acme", "USD", 560.0, 1000.0), ("globex", "USD", 280.0, 500.0)]


def _cost(week: dict):
    found = next(
        s for s in sections(week, datetime(2026, 11, 16), datetime(2026, 11, 23)) if s.heading.startswith("Cost")
    )
    return found.text, [row[-1] for row in found.table[1]]


def test_a_partial_week_of_cost_says_so_instead_of_a_drop_for_every_tenant():
    text, changes = _cost({**EMPTY, "cost": COST, "cost_days": 4})
    assert changes == ["partial week (4 of 7 days)"] * 2
    assert text.startswith("Cost data covers 4 of 7 days of this week")
    text, changes = _cost({**EMPTY, "cost": COST, "cost_days": 7})
    assert changes == ["-44.0%", "-44.0%"] and text == ""


def test_the_drift_chart_shows_each_anchored_benchmark_as_worse_than_its_anchor_with_the_limit():
    from phase8_assets.domains.weekly import drift_sections
    from phase8_assets.evidence.perf_baseline import Anchor

    slow = Anchor("post", "", "time", "s", "lower", "a" * 40, "9.6.0", 10, 2e-3, 0.0, 0.02)
    fast = Anchor("rps", "", "ops", "1/s", "higher", "a" * 40, "9.6.0", 10, 100.0, 0.0, 0.02)
    weeks = [datetime(2026, 10, 5) + timedelta(weeks=i) for i in range(3)]
    rows = [("post", "", "time", w, 2e-3 * (1 + 0.05 * i), 3) for i, w in enumerate(weeks)]
    rows += [("rps", "", "ops", w, 100.0 * (1 - 0.1 * i), 3) for i, w in enumerate(weeks)]
    frozen = datetime(2026, 10, 1, tzinfo=UTC)
    post, rps, gone = drift_sections(
        rows, [(slow, frozen, 0.08), (fast, frozen, None), (replace(slow, benchmark="x"), frozen, 0.08)]
    )
    assert list(post.figure.data[0].y) == [0.0, 5.0, 10.0]
    assert [s.y0 for s in post.figure.layout.shapes] == [0, 8.0]  # no drift, the +8 % limit
    assert list(rps.figure.data[0].y) == [0.0, 10.0, 20.0]  # throughput down = worse
    assert gone.figure is None and "no base-branch runs" in gone.text


def test_the_audit_section_says_who_waived_what_and_which_gates_were_off():
    rows = [
        ("finding.waived", "perf_budgets: p95", "octocat", "known flake", "CHAT-1", 2),
        ("gate.switched_off", "gate evidence_freshness", "unknown", "skipped: moved cluster", "", 1),
    ]
    found = next(s for s in sections({**EMPTY, "audit": rows}, datetime(2026, 11, 16), datetime(2026, 11, 23))
                 if s.heading.startswith("Audit"))  # fmt: skip
    headers, table = found.table
    assert [dict(zip(headers, r, strict=True))["by"] for r in table] == ["octocat", "unknown"]
    assert table[0][0] == "waived" and table[0][4] == "CHAT-1" and table[1][4] == "—"
    empty = next(
        s for s in sections(EMPTY, datetime(2026, 11, 16), datetime(2026, 11, 23)) if s.heading.startswith("Audit")
    )
    assert empty.table is None and "No finding was waived" in empty.text


def _what_changed(week: dict) -> str:
    return sections(week, datetime(2026, 11, 16), datetime(2026, 11, 23))[0].text


def test_a_week_the_warehouse_holds_nothing_of_is_no_data_not_nothing_changed():
    from phase8_assets.domains.weekly import changes

    text = _what_changed(EMPTY)
    assert text.startswith("No data: the warehouse holds no benchmark run") and "Nothing changed" not in text
    assert changes(EMPTY) == []  # the report's "changes" count: none, not the sentence saying so
    # Only cost recorded: "nothing changed" is said of that alone, and what is missing is named.
    text = _what_changed({**EMPTY, "cost": COST, "cost_days": 7})
    assert text.startswith("Nothing changed in what was recorded")
    assert text.endswith("Nothing was recorded this week for: benchmark runs, SLO evaluations, drill runs, gate runs.")
