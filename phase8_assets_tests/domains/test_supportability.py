"""The supportability rules on a small root written here: runbook references, links and anchors,
review dates, health responses (no Dagster: collect + build_index + findings)."""

import json
from datetime import UTC, datetime

import pytest

from phase8_assets.demo.runbooks import runbook
from phase8_assets.demo.supportability import SERVICES, health_response
from phase8_assets.domains.gates import GATES
from phase8_assets.domains.supportability import build_index, findings
from phase8_assets.evidence import readers
from phase8_assets.evidence.collect import collect
from phase8_assets.evidence.config import load_config

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONFIG = """\
apiVersion: phase8/v1
kind: EvidenceConfig
release: {version: "10.4.0", commit: "4f2c9e1a"}
runbooks: docs/ops
evidence:
  runbooks: {paths: ["docs/ops/*.md"], max_age: P180D}
  health_responses: {paths: ["health/*.json"], max_age: P1D}
"""


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    (root / "docs/ops").mkdir(parents=True)
    (root / "health").mkdir()
    (root / "phase8.yaml").write_text(CONFIG)
    for gate in GATES:
        body = "## Symptoms\nThe gate failed.\n\n## Roll back\nSee [symptoms](#symptoms)."
        text = runbook(gate, "team:sre", "2026-10-01", "P90D", [gate], body)
        (root / f"docs/ops/{gate.replace('_', '-')}.md").write_text(text)
    (root / "health/chat-api.json").write_text(health_response("chat-api", SERVICES["chat-api"], AT))
    return root


def evaluate(root, at=AT):
    config = load_config([str(root)], set(readers()))
    batch = collect(config)
    index = build_index(batch, config, at)
    return index, findings(index, batch, config, at)[0]


def rules(found, severity="error"):
    return sorted((f.rule, f.subject.rsplit("/", 1)[-1]) for f in found if f.severity == severity)


def test_a_complete_root_has_no_findings_and_indexes_every_runbook(root):
    index, found = evaluate(root)
    assert found == []
    assert len(index.runbooks) == len(GATES)
    rb = index.runbooks[str(root / "docs/ops/supportability.md")]
    assert (rb.referenced_by, rb.serves, rb.state(AT)) == (["gate:supportability"], ["supportability"], "current")
    assert rb.anchors == ["supportability", "symptoms", "roll-back"]


def test_a_gate_runbook_that_is_missing_fails_and_names_the_gate(root):
    (root / "docs/ops/rollback-integrity.md").unlink()
    _, found = evaluate(root)
    assert rules(found) == [("runbook-exists", "gate:rollback_integrity")]
    assert found[0].observed == f"no file {root / 'docs/ops/rollback-integrity.md'}"


def test_a_runbook_outside_the_kind_glob_is_not_taken_as_resolved(root):
    (root / "docs/ops/error-budget.md").rename(root / "docs/ops/error-budget.markdown")
    (root / "phase8.yaml").write_text(
        CONFIG.replace(
            "runbooks: docs/ops\n", "runbooks: docs/ops\ngates: {error_budget: {runbook: error-budget.markdown}}\n"
        )
    )
    _, found = evaluate(root)
    assert [f.observed.endswith("exists but is not read as evidence kind runbooks") for f in found] == [True]


@pytest.mark.parametrize(
    ("link", "problem"),
    [
        ("#no-such-heading", "no heading with anchor #no-such-heading"),
        ("error-budget.md#roll-back", None),
        ("error-budget.md#rollback", "no heading with anchor #rollback"),
        ("gone.md", "no file"),
        ("../../../elsewhere.md", "outside the evidence root"),
        ("https://example.com/x#y", None),
    ],
)
def test_links_and_anchors_resolve_or_fail(root, link, problem):
    _check_link(root, f"\nAlso [this]({link}).\n", problem)


def _check_link(root, added: str, problem: str | None) -> None:
    """``added`` appended to a runbook: no finding, or one link-resolves finding saying ``problem``."""
    path = root / "docs/ops/cost-budgets.md"
    path.write_text(path.read_text() + added)
    _, found = evaluate(root)
    if problem is None:
        assert found == []
    else:
        assert rules(found) == [("link-resolves", "cost-budgets.md")] and problem in found[0].observed


@pytest.mark.parametrize(
    "text",
    ['\nSee the [escalation policy][esc].\n\n[esc]: gone.md#on-call "Escalation"\n',
     '\nSee <a href="gone.md">the old page</a>.\n'],
)  # fmt: skip
def test_reference_links_and_html_anchors_are_links_too(root, text):
    path = root / "docs/ops/cost-budgets.md"
    path.write_text(path.read_text() + text)
    _, found = evaluate(root)
    assert rules(found) == [("link-resolves", "cost-budgets.md")] and "no file" in found[0].observed


def test_links_in_code_blocks_are_not_links_and_repeated_headings_get_a_suffix(root):
    path = root / "docs/ops/cost-budgets.md"
    path.write_text(path.read_text() + "\n```\n[x](gone.md)\n```\n\n## Symptoms\nAgain: [s](#symptoms-1).\n")
    index, found = evaluate(root)
    assert found == []
    assert index.runbooks[str(path)].anchors[-1] == "symptoms-1"


@pytest.mark.parametrize(
    ("headings", "link", "problem"),
    [
        ("## When `drill_evidence` fails\n", "#when-drill_evidence-fails", None),  # GitHub keeps "_" in a word
        ("## When `drill_evidence` fails\n", "#when-drillevidence-fails", "no heading with anchor"),
        ("## When _this_ fails\n", "#when-this-fails", None),  # emphasis is not text
        ("Escalation\n----------\n", "#escalation", None),  # a setext heading has an anchor too
        ("## Step\n## Step-1\n## Step\n", "#step-2", None),  # github-slugger skips a suffix already taken
        ("## Étape — vérifier\n", "#%C3%A9tape--v%C3%A9rifier", None),  # as GitHub's heading link copies it
        ("## Étape — vérifier\n", "#%C3%A9tape-v%C3%A9rifier", "no heading with anchor #étape-vérifier"),
    ],
)
def test_anchors_are_the_ones_github_renders(root, headings, link, problem):
    _check_link(root, f"\n{headings}\nSee [it]({link}).\n", problem)


@pytest.mark.parametrize(("runbook", "problem"), [("supportability.md#roll-back", None),
                                                  ("supportability.md#rollback", "no heading with anchor #rollback in")])  # fmt: skip
def test_a_runbook_named_with_a_heading_resolves_when_the_heading_is_there(root, runbook, problem):
    (root / "phase8.yaml").write_text(
        CONFIG.replace(
            "runbooks: docs/ops\n", f"runbooks: docs/ops\ngates: {{supportability: {{runbook: '{runbook}'}}}}\n"
        )
    )
    index, found = evaluate(root)
    rb = index.runbooks[str(root / "docs/ops/supportability.md")]
    assert rb.referenced_by == ["gate:supportability"]
    if problem is None:
        assert found == []
    else:
        assert rules(found) == [("runbook-exists", "gate:supportability")] and problem in found[0].observed


def test_a_runbook_reviewed_after_the_evaluation_time_is_named_as_set_aside_not_as_unread(root):
    path = root / "docs/ops/error-budget.md"
    path.write_text(path.read_text().replace("2026-10-01", "2027-09-01"))
    config = load_config([str(root)], set(readers()))
    batch = collect(config)
    batch.set_aside_future(AT, config.clock_skew)  # as the evidence asset does
    found = findings(build_index(batch, config, AT), batch, config, AT)[0]
    assert rules(found) == [("runbook-exists", "gate:error_budget")]
    assert found[0].observed == (
        f"{path} set aside: front matter.reviewed 2027-09-01 is after the evaluation time 2026-11-20T12:00:00Z"
    )


def test_a_runbook_past_its_review_date_fails_and_one_due_later_passes(root):
    def at(when):  # with a health capture as fresh then as AT's is at AT
        (root / "health/chat-api.json").write_text(health_response("chat-api", SERVICES["chat-api"], when))
        return evaluate(root, when)[1]

    found = at(datetime(2026, 12, 31, tzinfo=UTC))  # 2026-10-01 + P90D = 2026-12-30
    assert {f.rule for f in found} == {"review-current"} and len(found) == len(GATES)
    assert found[0].observed == "reviewed 2026-10-01, due 2026-12-30"
    assert at(datetime(2026, 12, 29, tzinfo=UTC)) == []


def test_without_review_every_the_runbooks_max_age_is_the_interval(root):
    path = root / "docs/ops/cost-budgets.md"
    path.write_text(path.read_text().replace("review_every: P90D\n", ""))
    index, _ = evaluate(root)
    assert index.runbooks[str(path)].review_every == "P180D"


def test_a_failing_health_response_fails_and_a_warning_one_warns(root):
    checks = [("postgres:connections", "datastore", 100, "connections", "fail", "pool exhausted")]
    (root / "health/chat-search.json").write_text(health_response("chat-search", checks, AT, status="fail"))
    (root / "health/chat-files.json").write_text(
        health_response("chat-files", [("disk:free", "system", 3, "GiB", "warn", "")], AT)
    )
    _, found = evaluate(root)
    assert rules(found) == [("health-status", "chat-search.json")]
    failing = next(f for f in found if f.severity == "error")
    assert failing.observed == "status fail; postgres:connections fail (pool exhausted)"
    # the top-level status says pass while a check warns: the worse of the two counts
    assert rules(found, "warning") == [("health-status", "chat-files.json")]


def test_a_contract_breaking_response_fails_with_the_field(root):
    doc = json.loads(health_response("chat-api", SERVICES["chat-api"], AT))
    doc["checks"]["uptime"][0]["metricValue"] = doc["checks"]["uptime"][0].pop("observedValue")
    (root / "health/chat-api.json").write_text(json.dumps(doc))
    _, found = evaluate(root)
    assert rules(found) == [("health-contract", "chat-api.json")]
    assert found[0].observed.startswith("checks.uptime[0].metricValue: expected observedValue")


def test_each_services_capture_is_judged_on_its_own_age(root):
    """The kind is fresh by its newest file; a service not probed for 12 days is not healthy by it."""
    from datetime import timedelta

    (root / "health/chat-realtime.json").write_text(
        health_response("chat-realtime", SERVICES["chat-realtime"], AT - timedelta(days=12))
    )
    _, found = evaluate(root)
    assert rules(found) == [("health-fresh", "chat-realtime.json")]
    assert found[0].observed.startswith("captured 12d") and found[0].limit.startswith("P1D (1d 0h)")


def test_a_stale_reading_in_a_fresh_capture_fails_naming_its_check(root):
    """The draft lets a check's reading be cached: a capture whose other checks were read minutes ago
    may carry a reading from weeks ago (its checker stopped). The capture's time is its newest
    reading, so that stale ``pass`` passed; now the check is named with its age."""
    doc = json.loads(health_response("chat-api", SERVICES["chat-api"], AT))
    doc["checks"]["postgres:connections"][0]["time"] = "2026-10-29T11:40:00Z"
    (root / "health/chat-api.json").write_text(json.dumps(doc))
    _, found = evaluate(root)
    assert rules(found) == [("health-fresh", "chat-api.json")]
    assert found[0].observed.startswith("postgres:connections pass read 22d")
    assert found[0].details["stale_checks"] == ["postgres:connections"]
    doc["checks"]["postgres:connections"][0]["time"] = "2026-11-20T00:00:00Z"  # 12 h: within P1D
    (root / "health/chat-api.json").write_text(json.dumps(doc))
    assert evaluate(root)[1] == []


def test_a_services_earlier_capture_is_history_once_a_later_one_supersedes_it(root):
    from datetime import timedelta

    earlier = health_response("chat-api", SERVICES["chat-api"], AT - timedelta(days=2), status="fail")
    (root / "health/chat-api-earlier.json").write_text(earlier)
    assert evaluate(root)[1] == []  # chat-api.json, captured at AT, passes: that is the service now
    (root / "health/chat-api.json").unlink()  # now the failing, stale capture is the newest
    assert rules(evaluate(root)[1]) == [
        ("health-fresh", "chat-api-earlier.json"),
        ("health-status", "chat-api-earlier.json"),
    ]
    (root / "health/chat-api.json").write_text(
        health_response("chat-api", SERVICES["chat-api"], AT - timedelta(hours=30))
    )
    assert rules(evaluate(root)[1]) == [("health-fresh", "chat-api.json")]  # the newest is stale: it still fails


def test_captures_of_a_service_within_the_max_age_are_all_judged(root):
    """Two replicas of one service captured an hour apart (a response names no instance): the earlier
    one failing is not hidden behind the later one passing."""
    from datetime import timedelta

    replica = health_response("chat-api", SERVICES["chat-api"], AT - timedelta(hours=1), status="fail")
    (root / "health/chat-api-replica-2.json").write_text(replica)
    assert rules(evaluate(root)[1]) == [("health-status", "chat-api-replica-2.json")]


def test_a_root_without_health_evidence_fails_closed(root):
    (root / "phase8.yaml").write_text(
        CONFIG.replace('  health_responses: {paths: ["health/*.json"], max_age: P1D}\n', "")
    )
    _, found = evaluate(root)
    assert rules(found) == [("health-configured", "health_responses")]
    (root / "phase8.yaml").write_text(CONFIG)
    (root / "health/chat-api.json").unlink()
    assert rules(evaluate(root)[1]) == [("health-present", "health_responses")]


def test_switching_a_gate_off_drops_its_runbook_reference(root):
    (root / "docs/ops/perf-budgets.md").unlink()
    gates = 'gates: {perf_budgets: {enabled: false, reason: "no benchmarks in this root (CHAT-1)"}}\n'
    (root / "phase8.yaml").write_text(CONFIG + gates)
    assert evaluate(root)[1] == []


@pytest.mark.parametrize("body", [{"status": "pass"}, {"status": "pass", "checks": {"uptime": [{"status": "pass"}]}}])
def test_a_capture_without_any_check_time_is_of_unknown_age_and_fails(root, body):
    # The draft makes checks.*.time optional; without it nothing in the response dates the capture,
    # and a file's mtime is never evidence time: the capture must not pass as fresh.
    (root / "health/chat-realtime.json").write_text(json.dumps({**body, "serviceId": "chat-realtime"}))
    _, found = evaluate(root)
    assert rules(found) == [("health-fresh", "chat-realtime.json")]
    assert found[0].observed.startswith("capture time unknown") and "checks.*.time" in found[0].limit
