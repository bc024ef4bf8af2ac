"""PerfBudgets: rule parsing, units, and which rule wins."""

import json
from importlib import resources

import pytest

from phase8_assets.evidence import EvidenceError, perf_budgets
from phase8_assets_tests.conftest import DATA, REPO

HEAD = 'apiVersion: phase8/v1\nkind: PerfBudgets\nreviewed: "2026-10-01"\nrules:\n'


def budgets(rules: str):
    return perf_budgets.read((HEAD + rules).encode(), "x").records[0]


def test_demo_budgets():
    b = perf_budgets.read((DATA / "policy/perf-budgets.yaml").read_bytes(), "x").records[0]
    assert (b.base_branch, b.max_runs, b.min_runs, b.false_discovery_rate) == ("main", 20, 5, 0.05)
    latency = b.rule_for("http_req_duration", "http_req_duration", "absolute")
    assert (latency.name, latency.absolute.stat, latency.absolute.limit) == ("api-latency", "p95", 0.25)
    ops = b.rule_for("tests/perf/test_messages.py::test_post_message", "ops", "absolute")
    assert (ops.name, ops.absolute.op, ops.absolute.limit) == ("messages-throughput", ">=", 300)
    errors = b.rule_for("http_req_failed", "http_req_failed", "absolute")
    assert errors.absolute.limit == pytest.approx(0.01)


def test_docs_schema_and_code_share_the_false_discovery_rate_default():
    default = budgets("  - {name: any, benchmark: '*', relative: '+10%', owner: team:a}\n").false_discovery_rate
    schema = json.loads((resources.files("phase8_assets.schemas") / "PerfBudgets.json").read_text())
    assert (
        default == perf_budgets.DEFAULT_FALSE_DISCOVERY_RATE == schema["properties"]["false_discovery_rate"]["default"]
    )
    docs = (REPO / "docs/ops/perf-evidence.md").read_text()
    assert f"false_discovery_rate: {default}" in docs and f"(default {default})" in docs


def test_the_most_specific_rule_wins():
    b = budgets(
        "  - {name: any, benchmark: '*', relative: '+10%', owner: team:a}\n"
        "  - {name: rx, benchmark: 're:^api/search', relative: '+20%', owner: team:b}\n"
        "  - {name: api, benchmark: 'api/*', relative: '+15%', owner: team:c}\n"
        "  - {name: api-search, benchmark: 'api/search*', relative: '+12%', owner: team:d}\n"
        "  - {name: exact, benchmark: 'api/search[long]', relative: '+30%', owner: team:e}\n"
        "  - {name: mem, benchmark: '*', measure: B/op, relative: '+5%', owner: team:f}\n"
    )
    rule = lambda name, measure="time": b.rule_for(name, measure, "relative").name  # noqa: E731
    assert rule("api/search[long]") == "exact"  # exact beats any pattern
    assert rule("api/search[short]") == "api-search"  # more literal characters
    assert rule("api/users") == "api"
    assert rule("web/home") == "any"
    assert rule("api/search[short]", "B/op") == "mem"  # a rule only covers its measure
    assert b.rule_for("api/users", "ops", "relative") is None


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        ("  - {name: a, benchmark: x, absolute: 'p95 <= 3 fortnights', owner: team:a}\n", "rules[0].absolute", "unknown unit"),
        ("  - {name: a, benchmark: 're:(', relative: '+1%', owner: team:a}\n", "rules[0].benchmark", "regular expression"),
        ("  - {name: a, benchmark: x, owner: team:a}\n", "rules[0]", ""),
        ("  - {name: a, benchmark: x, relative: '10', owner: team:a}\n", "rules[0].relative", ""),
        ("  - {name: a, benchmark: x, relative: '+1%', owner: team:a}\n  - {name: a, benchmark: y, relative: '+1%', owner: team:a}\n", "rules[1].name", "twice"),
        ("  - {name: a, benchmark: x, measure: time, absolute: 'ops >= 3', owner: team:a}\n", "rules[0].absolute", "measure"),
    ],
)  # fmt: skip
def test_bad_rules_are_rejected_with_the_field(rule, field, message):
    with pytest.raises(EvidenceError, match=message or None) as info:
        budgets(rule)
    assert info.value.field == field


def test_baseline_bounds_must_make_sense():
    with pytest.raises(EvidenceError) as info:
        perf_budgets.read(
            (HEAD.replace("rules:", "baseline: {min_runs: 10, max_runs: 5}\nrules:") +
             "  - {name: a, benchmark: x, relative: '+1%', owner: team:a}\n").encode(), "x",
        )  # fmt: skip
    assert info.value.field == "baseline.min_runs"
