"""``phase8 demo-data``: deterministic demo evidence for a fictitious collaboration server.

One module per concern, named as the concern's reader, domain logic and Dagster definitions are
(``evidence/``, ``domains/``, ``defs/``); each writes its demo evidence and its ``scenarios/``
(evidence roots that each make a named gate fail). Same seed, same bytes.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from phase8_assets.demo import (
    drills,
    evidence,
    finops,
    governance,
    isolation,
    perf,
    plugins,
    program,
    slo,
    supportability,
    upgrade,
)
from phase8_assets.demo.config import CONFIG, EVALUATION_TIME, RELEASE
from phase8_assets.demo.runbooks import RUNBOOKS, gate_runbook, runbook
from phase8_assets.shared.reports import write_bytes, write_text


def generate(out: Path, seed: int = 8) -> list[Path]:
    """Write the demo evidence and its scenarios under ``out``; returns the files written."""
    rng = random.Random(seed)
    out = Path(out)
    files: list[Path] = []

    def put(rel: str, text: str) -> None:
        files.append(write_text(out / rel, text))

    put("phase8.yaml", CONFIG)
    for rel, text in isolation.evidence(EVALUATION_TIME, random.Random(seed * 1000 + 8)).items():
        put(rel, text)
    put("policy/drill-catalog.yaml", drills.catalog())
    for month in range(4):
        for index, drill in enumerate(drills.DRILLS):
            start = EVALUATION_TIME - timedelta(days=30 * month + 3 + 2 * index, hours=rng.randint(0, 8))
            if drill[0] == drills.LITMUS_DRILL:
                path = f"evidence/drills/litmus/{drill[0]}-{start:%Y-%m-%d}.yaml"
                put(path, drills.chaos_result(drill[0], start + timedelta(minutes=6), 4 - month))
            else:
                put(f"evidence/drills/{drill[0]}/{start:%Y-%m-%d}.json", drills.journal(drill, start, rng))
    for slug, (title, owner, symptoms, mitigation) in RUNBOOKS.items():
        gate = slug.replace("-", "_")
        body = gate_runbook(gate, owner, symptoms, mitigation)
        put(f"docs/ops/{slug}.md", runbook(title, owner, "2026-10-02", "P180D", [gate], body))
    for drill_id, title, owner in drills.DRILLS:
        body = (
            f"## Drill\nInject {title} in staging, then production, monthly.\n\n"
            f"## Recovery\nFollow the service dashboard; escalate to {owner} if recovery exceeds its objective."
        )
        put(
            f"docs/ops/drill-{drill_id}.md",
            runbook(f"Drill: {title}", owner, "2026-09-15", "P90D", [drill_id], body),
        )
    for rel, text in supportability.evidence(EVALUATION_TIME).items():
        put(rel, text)
    perf_rng = random.Random(seed * 1000 + 3)
    history = perf.history(EVALUATION_TIME, perf_rng)
    for rel, text in history.items():
        put(rel, text)
    candidate_at = (EVALUATION_TIME - timedelta(hours=20)).replace(minute=7, second=31)
    for rel, text in perf.run_files(
        "evidence/bench/release", candidate_at, RELEASE["commit"], "release/10.4", perf_rng, EVALUATION_TIME
    ).items():
        put(rel, text)
    put("policy/perf-budgets.yaml", perf.BUDGETS)
    put("policy/perf-baseline.yaml", perf.history_anchor(history))
    put("policy/slo/chatterbox-slos.yaml", slo.SLO_FILE)
    put("policy/slo/alerting.yaml", slo.ALERTS_FILE)
    for rel, text in upgrade.evidence(EVALUATION_TIME).items():
        put(rel, text)
    put("policy/cost-allocation.yaml", finops.ALLOCATION)
    put("policy/cost-budgets.yaml", finops.BUDGETS)
    for rel, data in finops.exports(EVALUATION_TIME, random.Random(seed * 1000 + 6)).items():
        files.append(write_bytes(out / rel, data))
    for rel, text in slo.metrics(EVALUATION_TIME, random.Random(seed * 1000 + 4)).items():
        put(rel, text)
    for rel, text in governance.evidence(EVALUATION_TIME).items():
        put(rel, text)
    files += plugins.evidence(out, seed)
    put("scenarios/README.md", SCENARIOS_README)
    files += evidence.scenarios(out)
    files += drills.scenarios(out, rng)
    files += perf.scenarios(out, perf_rng)
    files += slo.scenarios(out, random.Random(seed * 1000 + 5))
    files += upgrade.scenarios(out)
    files += finops.scenarios(out, random.Random(seed * 1000 + 7))
    files += governance.scenarios(out)
    files += supportability.scenarios(out)
    files += isolation.scenarios(out, random.Random(seed * 1000 + 9))
    files += plugins.scenarios(out, seed)
    files += program.scenarios(out)
    return files


SCENARIOS_README = """\
# Scenarios

Each folder is a complete evidence root that `extends:` the demo config and changes one thing.
Run one with `phase8 gate --evidence data/scenarios/<name> --out out/<name>`.

| scenario | gate(s) it fails | why |
|---|---|---|
| `broken-evidence` | `evidence_validity`, `tenancy_isolation`, `program_completeness` | one isolation report is a truncated Surefire XML file (unclosed CDATA): unreadable, and its outcomes are unknown |
| `stale-evidence` | `evidence_freshness`, `tenancy_isolation`, `program_completeness` | the newest isolation report is 12 days old; isolation results may be 7 days old, and so may the result covering each cell |
| `missing-evidence` | `evidence_freshness`, `tenancy_isolation`, `program_completeness` | the isolation results folder is empty: missing evidence fails closed, and no cell is covered |
| `waived-broken-evidence` | none (passes) | `broken-evidence` plus a `kind: Waiver` for the broken file in each of the three gates (owner, ticket, expiry) |
| `expired-waiver` | `evidence_validity`, `tenancy_isolation`, `program_completeness` | the same waivers, expired: they no longer apply and are reported |
| `gate-switched-off` | none (passes) | `stale-evidence` with `evidence_freshness`, `tenancy_isolation` and `program_completeness` switched off: reported `skipped` with the reason |
| `overdue-drill` | `drill_evidence` | the disk-full drill last ran 50 days ago; its cadence is one month (+3 days grace) |
| `deviated-drill` | `drill_evidence` | the latest cache-loss drill deviated: the API did not answer after the cache was flushed |
| `missing-runbook` | `drill_evidence`, `supportability` | the catalog points the region-network-cut drill at a runbook that does not exist: the drill and the runbook index both fail |
| `perf-regression` | `perf_regressions` | a new 10.4.0 build (another commit) lists channels 16.3 % slower than its baseline, as the gate measures it (a 2 %-noise benchmark) |
| `perf-regression-waived` | none (passes) | `perf-regression` plus a `kind: Waiver` accepting it (the new permission check costs time) |
| `perf-budget` | `perf_budgets` | the k6 API test's p95 is 262 ms; its budget is 250 ms (the mean moved only 4 %: no regression) |
| `perf-creep` | `perf_regressions` | eight releases each 1.5 % slower on test_post_message: every per-release comparison passes, the drift rule against the 9.6.0 anchor (`kind: PerfBaseline`, limit +8 %) blocks (a root holding only the pytest suite, with that suite's budgets) |
| `perf-noise` | none (passes) | the noisiest benchmark (6 % run-to-run) moved 2 %: not a regression |
| `slo-fast-burn` | `slo_burn_rate` | a chat-api canary answers 2.5 % of requests with 503 for the last hour: burn 25x over 1h and 5m (page) |
| `slo-budget-exhausted` | `error_budget` | chat-files has failed 0.5 % more requests for 30 days: about 120 % of its 0.5 % budget spent (a ticket-level burn warns) |
| `upgrade-skips-stop` | `upgrade_preflight` | an install on 10.1.0 prepared to go straight to 10.4.0, skipping the required stop 10.2.0 |
| `upgrade-pending-migrations` | `upgrade_preflight` | globex-prod's preflight still has 2 background migrations pending |
| `rollback-row-mismatch` | `rollback_integrity` | the newest rollback drill lost 12 rows of globex's posts table |
| `cost-forecast-over-budget` | none (passes) | acme's GPU experiment since 10 November puts its month-end forecast over budget: `cost_budgets` warns (cost never blocks) |
| `isolation-cache-leak` | `tenancy_isolation` | the cache suite finds globex served acme's cached file listing (a cache key without the tenant) |
| `isolation-uncovered-cell` | `tenancy_isolation` | the webhooks event tests were skipped: a skipped test covers nothing, so webhooks × events is uncovered |
| `isolation-stale-results` | `tenancy_isolation` | the data suite last ran 4 days ago: fresh enough for `evidence_freshness` (7 days), too old for messages × data (3 days) |
| `isolation-flaky-pass` | `tenancy_isolation` | a messages event test failed, then passed on rerun: a test that sometimes leaks is a leak |
| `slo-slow-burn` | none (passes) | chat-realtime has failed 0.35 % of requests for 3 days: burn 3.5x over 1d and 2h is a ticket: a warning |
| `exception-expired` | `policy_compliance` | exception GOV-298 (globex's pending user erasure) expired on 15 November: the 41-day-old erasure counts again; `policy_exceptions` warns its owner |
| `retention-violation` | `policy_compliance` | initech keeps EU messages 15 months; the EU maximum is one year |
| `access-denied-grant` | `policy_compliance` | a contractor may export globex's audit logs; the Cedar access policy forbids exporting restricted data outside compliance |
| `exception-self-approved` | `policy_compliance`, `policy_exceptions` | exception GOV-311 is approved by its own requester: refused (`policy_exceptions`), so acme's 4-year-old files count again (`policy_compliance`) |
| `stale-runbook` | `supportability` | the chat-search runbook was reviewed on 2 March with `review_every: P90D`: its review was due on 31 May |
| `broken-anchor` | `supportability` | the chat-search runbook links to `drill-db-failover.md#promote-the-replica`, a heading that runbook does not have |
| `health-fail` | `supportability` | chat-search's captured `/health` answers `fail`: its PostgreSQL connection pool is exhausted |
| `health-contract` | `supportability` | chat-search's captured `/health` is in draft 01's shape (`details`, `releaseID`, `metricValue`): it breaks the contract |
| `plugin-tampered-file` | `plugin_signatures` | a copy of the polls plugin 1.6.0 whose web app was changed after signing: `file-changed` |
| `plugin-revoked-key` | `plugin_signatures` | the giphy publisher's key is revoked in the trust policy (leaked in a CI log): `revoked-key` |
| `plugin-overprivileged` | `plugin_capabilities` | polls 1.7.0, signed by its community key, asks for `act_as_user`, `read:users` and egress to its own telemetry host |
| `plugin-downgrade` | `plugin_signatures` | giphy 2.0.0, validly signed, below the approved 2.1.0: `rollback` |
| `program-item-uncovered` | none (passes) | `drill_evidence`, the only gate of the chaos drills, is switched off with a reason: `program_completeness` warns that the item is uncovered (resilience still has upgrade safety) |
| `program-item-unowned` | `program_completeness` | the governance item's owner is withdrawn (`owner: null`): every item needs an owner |
| `program-cadence-missed` | `program_completeness` | FinOps declares daily cost exports (`P1D`); the newest is 36 hours old: fresh for `evidence_freshness` (3 days), a missed cadence |
"""
