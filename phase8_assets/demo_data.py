"""``phase8 demo-data``: deterministic demo evidence for a fictitious collaboration server.

Three tenants, tenancy-isolation JUnit suites, Chaos Toolkit drill journals (with naive
timestamps, as chaoslib writes them), runbooks, and ``scenarios/`` that each make a named gate
fail. Same seed, same bytes.
"""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

from phase8_assets import demo_finops, demo_perf, demo_slo, demo_upgrade
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import write_bytes, write_text

EVALUATION_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TENANTS = ["acme", "globex", "initech"]
RESOURCES = ["channels", "messages", "files", "search_index", "webhooks", "plugin_kv"]
DIMENSIONS = ["data", "events", "cache"]
DRILLS = [
    ("db-failover", "database failover", "team:data-platform"),
    ("cache-loss", "cache loss", "team:realtime"),
    ("event-bus-partition", "event-bus partition", "team:realtime"),
    ("plugin-crash-loop", "plugin crash loop", "team:extensibility"),
    ("disk-full", "disk full", "team:storage"),
    ("region-network-cut", "region network cut", "team:sre"),
]
# drill id -> (fault injected, target service, recovery objective)
DRILL_FAULTS = {
    "db-failover": ("stop the PostgreSQL primary; the replica is promoted", "chat-db", "PT5M"),
    "cache-loss": ("flush and restart the Redis cluster", "chat-cache", "PT5M"),
    "event-bus-partition": ("partition one NATS node from the cluster", "chat-events", "PT5M"),
    "plugin-crash-loop": ("delete plugin-host pods repeatedly (LitmusChaos pod-delete)", "plugin-host", None),
    "disk-full": ("fill the file store volume to 100 %", "chat-files", "PT5M"),
    "region-network-cut": ("cut the network between the two regions", "chat-api", "PT5M"),
}
LITMUS_DRILL = "plugin-crash-loop"
RELEASE = {
    "version": "10.4.0",
    "commit": "4f2c9e1a7b3d5c8e0f1a2b3c4d5e6f7a8b9c0d1e",
    "base_branch": "main",
    "environment": "production",
}

CONFIG = f"""\
# Demo evidence for a fictitious self-hosted collaboration server ("Chatterbox").
# The evaluation time is pinned so the verdict is the same on any day.
apiVersion: phase8/v1
kind: EvidenceConfig
release:
  version: "{RELEASE["version"]}"
  commit: "{RELEASE["commit"]}"
  base_branch: {RELEASE["base_branch"]}
  environment: {RELEASE["environment"]}
evaluation_time: "{format_timestamp(EVALUATION_TIME)}"
tenants: [{", ".join(TENANTS)}]
owners:
  default: team:platform-reliability
  evidence_validity: team:platform-reliability
  evidence_freshness: team:platform-reliability
  drill_evidence: team:sre
  perf_budgets: team:platform-reliability
  perf_regressions: team:platform-reliability
  slo_burn_rate: team:sre
  error_budget: team:sre
  upgrade_preflight: team:platform-reliability
  rollback_integrity: team:data-platform
  cost_budgets: team:finops
runbooks: docs/ops
evidence:
  isolation_results:
    paths: ["evidence/isolation/*.xml"]
    max_age: P7D
    owner: team:tenancy
  drill_journals:
    paths: ["evidence/drills/**/*.json"]
    max_age: P35D
    owner: team:sre
  chaos_results:
    paths: ["evidence/drills/litmus/*.yaml"]
    max_age: P35D
    owner: team:sre
  drill_catalog:
    paths: ["policy/drill-catalog.yaml"]
    max_age: P365D
    owner: team:sre
  benchmarks:
    paths: ["evidence/bench/**/*"]
    max_age: P14D
    owner: team:platform-reliability
  perf_budgets:
    paths: ["policy/perf-budgets.yaml"]
    max_age: P365D
    owner: team:platform-reliability
  slo_definitions:
    paths: ["policy/slo/*.yaml"]
    max_age: P365D
    owner: team:sre
  otel_metrics:
    paths: ["evidence/otel/*.jsonl"]
    max_age: PT2H
    owner: team:sre
  cost_exports:
    paths: ["evidence/cost/*.csv.gz"]
    max_age: P3D
    owner: team:finops
  cost_allocation:
    paths: ["policy/cost-allocation.yaml"]
    max_age: P365D
    owner: team:finops
  cost_budgets:
    paths: ["policy/cost-budgets.yaml"]
    max_age: P365D
    owner: team:finops
  upgrade_path:
    paths: ["policy/upgrade-path.yaml"]
    max_age: P365D
    owner: team:platform-reliability
  preflight_reports:
    paths: ["evidence/upgrade/preflight/*.json"]
    max_age: P14D
    owner: team:platform-reliability
  rollback_reports:
    paths: ["evidence/upgrade/rollback/*.json"]
    max_age: P30D
    owner: team:data-platform
  runbooks:
    paths: ["docs/ops/*.md"]
    max_age: P180D
    owner: team:sre
limits:
  max_file_bytes: 16777216
  read_timeout_seconds: 30
"""


def _junit(dimension: str, at: datetime, rng: random.Random, broken_case: str | None = None) -> str:
    suites = ET.Element("testsuites", name=f"tenancy-isolation-{dimension}")
    cases = [(t, r) for t in TENANTS for r in RESOURCES]
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"isolation.{dimension}",
        tests=str(len(cases)),
        failures="0",
        errors="0",
        skipped="0",
        timestamp=format_timestamp(at),
        hostname="ci-runner-07",
        time="0",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="phase8.dimension", value=dimension)
    total = 0.0
    for tenant, resource in cases:
        seconds = round(rng.uniform(0.02, 0.9), 3)
        total += seconds
        name = f"test_{dimension}_isolation[{tenant}-{resource}]"
        case = ET.SubElement(
            suite, "testcase", classname=f"isolation.{dimension}.test_{resource}", name=name, time=f"{seconds:.3f}"
        )
        case_props = ET.SubElement(case, "properties")
        for key, value in (("tenant", tenant), ("resource", resource), ("dimension", dimension)):
            ET.SubElement(case_props, "property", name=f"phase8.{key}", value=value)
        if name == broken_case:
            failure = ET.SubElement(case, "failure", message="tenant globex read 3 rows owned by acme")
            failure.text = "AssertionError: cross-tenant rows visible"
    suite.set("time", f"{total:.3f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _naive(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _journal(drill: tuple[str, str, str], start: datetime, rng: random.Random, deviated: bool = False) -> str:
    drill_id, title, _owner = drill
    inject = rng.uniform(20, 90)
    recover = rng.uniform(30, 240)
    end = start + timedelta(seconds=inject + recover + 10)

    def probe(name: str, at: datetime, ok: bool = True) -> dict:
        return {
            "activity": {
                "type": "probe",
                "name": name,
                "tolerance": 200,
                "provider": {
                    "type": "http",
                    "url": "https://chat.internal.example/api/v4/system/ping",
                    "headers": {"Authorization": "Bearer demo-token-not-real-0000"},
                },
            },
            "output": {"status": 200 if ok else 503, "headers": {"content-type": "application/json"}},
            "status": "succeeded",
            "start": _naive(at),
            "end": _naive(at + timedelta(seconds=0.4)),
            "duration": 0.4,
            "tolerance_met": ok,
        }

    doc = {
        "chaoslib-version": "1.42.0",
        "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
        "node": "chaos-runner-02",
        "experiment": {
            "version": "1.0.0",
            "title": f"{title} drill",
            "description": f"Inject {title} and verify the service recovers within its objective.",
            "tags": ["phase8", f"drill:{drill_id}", "env:production"],
            "configuration": {"api_url": "https://chat.internal.example", "db_password": "demo-not-a-secret"},
            "steady-state-hypothesis": {"title": "the API answers", "probes": [probe("api-ping", start)["activity"]]},
            "method": [
                {
                    "type": "action",
                    "name": f"inject-{drill_id}",
                    "provider": {
                        "type": "python",
                        "module": "chatterbox_chaos.actions",
                        "func": drill_id.replace("-", "_"),
                    },
                }
            ],
            "rollbacks": [],
            "dry": False,
        },
        "start": _naive(start),
        "status": "failed" if deviated else "completed",
        "deviated": deviated,
        "steady_states": {
            "before": {"steady_state_met": True, "probes": [probe("api-ping", start)]},
            "after": {
                "steady_state_met": not deviated,
                "probes": [probe("api-ping", end - timedelta(seconds=1), ok=not deviated)],
            },
            "during": [],
        },
        "run": [
            {
                "activity": {"type": "action", "name": f"inject-{drill_id}"},
                "status": "succeeded",
                "output": None,
                "start": _naive(start + timedelta(seconds=1)),
                "end": _naive(start + timedelta(seconds=1 + inject)),
                "duration": round(inject, 3),
            }
        ],
        "rollbacks": [],
        "end": _naive(end),
        "duration": round((end - start).total_seconds(), 3),
    }
    return json.dumps(doc, indent=2) + "\n"


def _chaos_result(drill_id: str, at: datetime, run: int) -> str:
    """A LitmusChaos ChaosResult as ``kubectl get chaosresult -o yaml`` prints it."""
    name = f"{drill_id}-pod-delete"
    created = EVALUATION_TIME - timedelta(days=200)
    return f"""\
apiVersion: litmuschaos.io/v1alpha1
kind: ChaosResult
metadata:
  creationTimestamp: "{format_timestamp(created)}"
  generation: {run}
  labels:
    app.kubernetes.io/component: experiment-job
    chaosUID: 7d1c{run:04d}-5b9e-4c1a-9f60-2f8e3c{run:06d}
    env: production
    name: {name}
    phase8/drill: {drill_id}
  managedFields:
  - apiVersion: litmuschaos.io/v1alpha1
    fieldsType: FieldsV1
    manager: experiments
    operation: Update
    time: "{format_timestamp(at)}"
  name: {name}
  namespace: chatterbox
  resourceVersion: "{48211 + run * 977}"
  uid: 0b6f3a52-93d4-4c8e-8a11-6c1d2e{run:06d}
spec:
  engine: {drill_id}
  experiment: pod-delete
  instance: ""
status:
  experimentStatus:
    failStep: N/A
    phase: Completed
    probeSuccessPercentage: "100"
    verdict: Pass
  history:
    failedRuns: 0
    passedRuns: {run}
    stoppedRuns: 0
    targets:
    - chaosStatus: targeted
      kind: deployment
      name: plugin-host
  probeStatuses:
  - mode: SOT
    name: plugin-host-ready
    status:
      description: Passed
      verdict: Passed
    type: k8sProbe
  - mode: Continuous
    name: api-ping
    status:
      description: Passed
      verdict: Passed
    type: httpProbe
  - mode: EOT
    name: plugin-host-ready-after
    status:
      description: Passed
      verdict: Passed
    type: k8sProbe
"""


def _catalog(runbook_names: dict[str, str] | None = None) -> str:
    lines = [
        "apiVersion: phase8/v1",
        "kind: DrillCatalog",
        "description: Monthly fault-injection drills of the Chatterbox platform (Phase 8).",
        'reviewed: "2026-10-01"',
        "drills:",
    ]
    for drill_id, title, owner in DRILLS:
        fault, service, objective = DRILL_FAULTS[drill_id]
        runbook = (runbook_names or {}).get(drill_id, f"drill-{drill_id}.md")
        match = (
            f'      title: "{drill_id}-pod-delete"\n      tags: ["experiment:pod-delete"]'
            if drill_id == LITMUS_DRILL
            else f'      title: "{title} drill"\n      tags: ["drill:{drill_id}"]'
        )
        lines += [
            f"  - id: {drill_id}",
            f'    title: "{title.capitalize()}"',
            f'    fault: "{fault}"',
            f"    service: {service}",
            f"    owner: {owner}",
            "    cadence: P1M",
            "    grace: P3D",
            "    match:",
            match,
            f"    runbook: {runbook}",
            *([f"    recovery_objective: {objective}"] if objective else []),
            "    environments: [production]",
            f"    tenants: [{', '.join(TENANTS)}]",
        ]
    return "\n".join(lines) + "\n"


def _runbook(slug: str, title: str, owner: str, reviewed: str, body: str) -> str:
    return f'---\ntitle: "{title}"\nowner: "{owner}"\nreviewed: "{reviewed}"\n---\n\n# {title}\n\n{body}\n'


RUNBOOKS = {
    "evidence-validity": (
        "Evidence validity",
        "team:platform-reliability",
        """\
## What failed
A file under the evidence root could not be read by its reader. The finding names the file, the
field and what was expected.

## What to do
1. Run `phase8 validate <file>` to see the same message locally.
2. Fix the producer (the CI job, drill or export that wrote the file) and re-publish the evidence.
3. If the file is known-bad and the release must go out, add a `kind: Waiver` with an owner,
   a ticket and an expiry; never delete evidence to make the gate pass.""",
    ),
    "evidence-freshness": (
        "Evidence freshness",
        "team:platform-reliability",
        """\
## What failed
An evidence kind has no file younger than its maximum age (`evidence.<kind>.max_age` in
`phase8.yaml`), measured from the timestamp inside the evidence, or no evidence at all.

## What to do
1. Re-run the producer (isolation suite, drill, review) so current evidence exists.
2. Check that the producer writes a timestamp with a time zone.
3. Raise `max_age` only with the owning team's agreement.""",
    ),
    "perf-regressions": (
        "Performance regressions",
        "team:platform-reliability",
        """\
## What failed
A benchmark of the release commit is significantly worse than its baseline (the base branch's
recent runs since the last change point) by more than its rule's relative limit. The finding gives
the effect, the p- and q-values, the baseline window and the candidate's result file.

## What to do
1. Open the regressions report (`reports/perf/regressions.html` in PHASE8_HOME): history, baseline
   band, change points and the candidate.
2. Bisect between the baseline's last commit and the release commit; fix, re-run the benchmarks.
3. An intentional regression (a feature that costs time) is accepted with a `kind: Waiver` naming
   the benchmark and the rule; once the release ships, the new level becomes the baseline after
   the next change point.
4. `baseline-history` warnings: the benchmark has too few base-branch runs since its last change;
   they clear as history accumulates.""",
    ),
    "perf-budgets": (
        "Performance budgets",
        "team:platform-reliability",
        """\
## What failed
A benchmark of the release commit breaks an absolute budget (`policy/perf-budgets.yaml`), e.g.
`p95 <= 250ms`, in its worst candidate run.

## What to do
1. Check whether the whole series is near the limit (`reports/perf/regressions.html`) or only the
   candidate moved.
2. Fix and re-run, or agree a new budget with the owner of the rule (a reviewed change to the
   budgets file), or accept the release with a `kind: Waiver` that expires.""",
    ),
    "slo-burn-rate": (
        "SLO burn rate",
        "team:sre",
        """\
## What failed
An SLO burns its error budget fast enough to page: both windows of a page condition (1h and 5m
at 14.4x, or 6h and 30m at 6x, for a 30-day SLO) are above the factor at the evaluation time.
The finding names the SLO, the condition, both burn rates and the owner.

## What to do
1. Treat it as an incident on the service: the release waits until the burn stops.
2. Check `slo_burn_rates` in the Dagster UI (burn per window) and the service's dashboards.
3. `insufficient-data` warnings: too few requests to judge; check that telemetry still arrives.""",
    ),
    "error-budget": (
        "Error budget",
        "team:sre",
        """\
## What failed
An SLO has less error budget left than the release policy's minimum
(`phase8/min-budget-remaining`, default 0 %) over its window.

## What to do
1. Spend the rest of the window on reliability work, as the SLO's error budget policy says.
2. A release that fixes the cause may ship with a `kind: Waiver` naming the SLO, approved by its
   owner, expiring when the window has recovered.""",
    ),
    "upgrade-preflight": (
        "Upgrade preflight",
        "team:platform-reliability",
        """\
## What failed
A supported source version cannot reach the release without skipping a required stop, or a
preflight report for the release found a problem: a skipped stop, pending or failed migrations,
too little disk, an old database, a component too far behind, or a failed check. The finding names
the install, its versions and the check.

## What to do
1. `path-exists` / `legal-hop`: fix the upgrade path (`policy/upgrade-path.yaml`) or the release
   notes: operators must land on every required stop.
2. `migrations-pending`: wait for background migrations to finish on that install, then re-run
   its preflight.
3. Anything else: fix the install, re-run `preflight`, publish the new report.""",
    ),
    "rollback-integrity": (
        "Rollback integrity",
        "team:data-platform",
        """\
## What failed
The newest rollback drill to the release did not bring back identical data: a table (and tenant)
has different row counts or content checksums after the rollback, or the schema differs, or
there is no current drill.

## What to do
1. Treat the down migration of the release as broken: find what it does to the named table.
2. Fix, run the drill again (upgrade, rollback, compare), publish the new report.""",
    ),
    "cost-budgets": (
        "Cost budgets",
        "team:finops",
        """\
## What it means
A tenant, team or service has spent (or, by its month-end forecast, will spend) more than a
threshold of its monthly budget. This gate warns; cost informs a release, it never blocks one.

## What to do
1. Open the FinOps dashboard (`reports/finops/` in PHASE8_HOME): spend by tenant and service,
   the budget burn-down with its forecast, the unallocated share, the top movers.
2. Tell the budget's owner; check `cost_anomalies` for the day the spend jumped.
3. Untagged spend shows as `__unallocated__`: fix the tags at the source.""",
    ),
    "drill-evidence": (
        "Chaos drill evidence",
        "team:sre",
        """\
## What failed
A drill in the drill catalog (`policy/drill-catalog.yaml`) has no passing run inside its cadence,
its latest run deviated or failed, its recovery took longer than its objective, or its runbook
is missing. The finding names the drill, the rule, the journal and the drill's owner.

## What to do
1. `cadence`: run the drill (`chaos run` / the LitmusChaos workflow) and publish the journal.
2. `drill-outcome`: read the run's evidence report (`reports/drills/` in PHASE8_HOME), fix the
   weakness it found, then run the drill again; an earlier success does not hide a later failure.
3. `recovery-objective`: treat as an incident review; change the objective only with the owner.
4. `runbook-present`: write or restore the runbook the catalog names under `docs/ops/`.""",
    ),
}


def generate(out: Path, seed: int = 8) -> list[Path]:
    """Write the demo evidence and its scenarios under ``out``; returns the files written."""
    rng = random.Random(seed)
    out = Path(out)
    files: list[Path] = []

    def put(rel: str, text: str) -> None:
        files.append(write_text(out / rel, text))

    put("phase8.yaml", CONFIG)
    for index, dimension in enumerate(DIMENSIONS):
        put(
            f"evidence/isolation/{dimension}.xml",
            _junit(dimension, EVALUATION_TIME - timedelta(days=2, hours=index), rng),
        )
    put("policy/drill-catalog.yaml", _catalog())
    for month in range(4):
        for index, drill in enumerate(DRILLS):
            start = EVALUATION_TIME - timedelta(days=30 * month + 3 + 2 * index, hours=rng.randint(0, 8))
            if drill[0] == LITMUS_DRILL:
                path = f"evidence/drills/litmus/{drill[0]}-{start:%Y-%m-%d}.yaml"
                put(path, _chaos_result(drill[0], start + timedelta(minutes=6), 4 - month))
            else:
                put(f"evidence/drills/{drill[0]}/{start:%Y-%m-%d}.json", _journal(drill, start, rng))
    for slug, (title, owner, body) in RUNBOOKS.items():
        put(f"docs/ops/{slug}.md", _runbook(slug, title, owner, "2026-10-02", body))
    for drill_id, title, owner in DRILLS:
        body = (
            f"## Drill\nInject {title} in staging, then production, monthly.\n\n"
            f"## Recovery\nFollow the service dashboard; escalate to {owner} if recovery exceeds its objective."
        )
        put(f"docs/ops/drill-{drill_id}.md", _runbook(drill_id, f"Drill: {title}", owner, "2026-09-15", body))
    perf_rng = random.Random(seed * 1000 + 3)
    for rel, text in demo_perf.history(EVALUATION_TIME, perf_rng).items():
        put(rel, text)
    candidate_at = (EVALUATION_TIME - timedelta(hours=20)).replace(minute=7, second=31)
    for rel, text in demo_perf.run_files(
        "evidence/bench/release", candidate_at, RELEASE["commit"], "release/10.4", perf_rng, EVALUATION_TIME
    ).items():
        put(rel, text)
    put("policy/perf-budgets.yaml", demo_perf.BUDGETS)
    put("policy/slo/chatterbox-slos.yaml", demo_slo.SLO_FILE)
    put("policy/slo/alerting.yaml", demo_slo.ALERTS_FILE)
    for rel, text in demo_upgrade.evidence(EVALUATION_TIME).items():
        put(rel, text)
    put("policy/cost-allocation.yaml", demo_finops.ALLOCATION)
    put("policy/cost-budgets.yaml", demo_finops.BUDGETS)
    for rel, data in demo_finops.exports(EVALUATION_TIME, random.Random(seed * 1000 + 6)).items():
        files.append(write_bytes(out / rel, data))
    for rel, text in demo_slo.metrics(EVALUATION_TIME, random.Random(seed * 1000 + 4)).items():
        put(rel, text)
    files += _scenarios(out, rng)
    files += _perf_scenarios(out, perf_rng)
    files += _slo_scenarios(out, random.Random(seed * 1000 + 5))
    files += _upgrade_scenarios(out)
    files.append(
        write_text(
            out / "scenarios/cost-forecast-over-budget/phase8.yaml",
            "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
            "description: acme's GPU experiment puts its month-end forecast over budget; cost_budgets warns\n"
            'evidence:\n  cost_exports:\n    extra_paths: ["cost/*.csv.gz"]\n',
        )
    )
    files.append(
        write_bytes(
            out / "scenarios/cost-forecast-over-budget/cost/gpu-experiment-2026-11.csv.gz",
            demo_finops.gpu_experiment(EVALUATION_TIME, random.Random(seed * 1000 + 7)),
        )
    )
    return files


SCENARIOS_README = """\
# Scenarios

Each folder is a complete evidence root that `extends:` the demo config and changes one thing.
Run one with `phase8 gate --evidence data/scenarios/<name> --out out/<name>`.

| scenario | gate it fails | why |
|---|---|---|
| `broken-evidence` | `evidence_validity` | one isolation report is a truncated Surefire XML file (unclosed CDATA) |
| `stale-evidence` | `evidence_freshness` | the newest isolation report is 12 days old; isolation results may be 7 days old |
| `missing-evidence` | `evidence_freshness` | the isolation results folder is empty: missing evidence fails closed |
| `waived-broken-evidence` | none (passes) | `broken-evidence` plus a `kind: Waiver` for the broken file (owner, ticket, expiry) |
| `expired-waiver` | `evidence_validity` | the same waiver, expired: it no longer applies and is reported |
| `gate-switched-off` | none (passes) | `stale-evidence` with `evidence_freshness` switched off: reported `skipped` with the reason |
| `overdue-drill` | `drill_evidence` | the disk-full drill last ran 50 days ago; its cadence is one month (+3 days grace) |
| `deviated-drill` | `drill_evidence` | the latest cache-loss drill deviated: the API did not answer after the cache was flushed |
| `missing-runbook` | `drill_evidence` | the catalog points the region-network-cut drill at a runbook that does not exist |
| `perf-regression` | `perf_regressions` | a new 10.4.0 build (another commit) lists channels 12 % slower than its baseline (a 2 %-noise benchmark) |
| `perf-regression-waived` | none (passes) | `perf-regression` plus a `kind: Waiver` accepting it (the new permission check costs time) |
| `perf-budget` | `perf_budgets` | the k6 API test's p95 is 262 ms; its budget is 250 ms (the mean moved only 4 %: no regression) |
| `perf-noise` | none (passes) | the noisiest benchmark (6 % run-to-run) moved 2 %: not a regression |
| `slo-fast-burn` | `slo_burn_rate` | a chat-api canary answers 2.5 % of requests with 503 for the last hour: burn 25x over 1h and 5m (page) |
| `slo-budget-exhausted` | `error_budget` | chat-files has failed 0.5 % more requests for 30 days: about 120 % of its 0.5 % budget spent (a ticket-level burn warns) |
| `upgrade-skips-stop` | `upgrade_preflight` | an install on 10.1.0 prepared to go straight to 10.4.0, skipping the required stop 10.2.0 |
| `upgrade-pending-migrations` | `upgrade_preflight` | globex-prod's preflight still has 2 background migrations pending |
| `rollback-row-mismatch` | `rollback_integrity` | the newest rollback drill lost 12 rows of globex's posts table |
| `cost-forecast-over-budget` | none (passes) | acme's GPU experiment since 10 November puts its month-end forecast over budget: `cost_budgets` warns (cost never blocks) |
| `slo-slow-burn` | none (passes) | chat-realtime has failed 0.35 % of requests for 3 days: burn 3.5x over 1d and 2h is a ticket: a warning |
"""

TRUNCATED_SUREFIRE = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" name="isolation.files.TenantFilesTest" time="4.2" tests="18" errors="0" skipped="0" failures="0" timestamp="2026-11-19T08:14:02Z">
  <testcase name="test_files_isolation[acme-files]" classname="isolation.files.TenantFilesTest" time="0.21"/>
  <testcase name="test_files_isolation[globex-files]" classname="isolation.files.TenantFilesTest" time="0.19">
    <system-out><![CDATA[2026-11-19 08:14:03 INFO  starting tenant globex
"""


def _scenarios(out: Path, rng: random.Random) -> list[Path]:
    files = [write_text(out / "scenarios/README.md", SCENARIOS_README)]

    def put(rel: str, text: str) -> None:
        files.append(write_text(out / "scenarios" / rel, text))

    header = "apiVersion: phase8/v1\nkind: EvidenceConfig\n"
    isolation = 'evidence:\n  isolation_results:\n    paths: ["isolation/*.xml"]\n'
    put(
        "broken-evidence/phase8.yaml",
        header + "extends: ../../phase8.yaml\n"
        "description: one isolation report is truncated; evidence_validity fails\n" + isolation,
    )
    for index, dimension in enumerate(DIMENSIONS):
        put(
            f"broken-evidence/isolation/{dimension}.xml",
            _junit(dimension, EVALUATION_TIME - timedelta(days=1, hours=index), random.Random(index)),
        )
    put("broken-evidence/isolation/TEST-isolation.files.TenantFilesTest.xml", TRUNCATED_SUREFIRE)

    put(
        "stale-evidence/phase8.yaml",
        header + "extends: ../../phase8.yaml\n"
        "description: the newest isolation report is 12 days old; evidence_freshness fails\n" + isolation,
    )
    for index, dimension in enumerate(DIMENSIONS):
        put(
            f"stale-evidence/isolation/{dimension}.xml",
            _junit(dimension, EVALUATION_TIME - timedelta(days=12 + index), random.Random(10 + index)),
        )

    put(
        "missing-evidence/phase8.yaml",
        header + "extends: ../../phase8.yaml\n"
        "description: the isolation results folder is empty; evidence_freshness fails closed\n" + isolation,
    )
    put("missing-evidence/isolation/README.md", "The isolation suite did not publish results for this release.\n")

    waiver = """\
apiVersion: phase8/v1
kind: Waiver
gate: evidence_validity
subject: "*/TEST-isolation.files.TenantFilesTest.xml"
rule: readable
owner: team:tenancy
reason: Surefire truncates this report when the runner is killed; the suite itself passed in the rerun.
ticket: CHAT-4821
expires: "{expires}"
"""
    put(
        "waived-broken-evidence/phase8.yaml",
        header + "extends: ../broken-evidence/phase8.yaml\n"
        "description: the broken isolation report is waived; the gate passes\n"
        'waivers: ["waivers/*.yaml"]\n',
    )
    put("waived-broken-evidence/waivers/chat-4821.yaml", waiver.format(expires="2026-12-31T00:00:00Z"))
    put(
        "expired-waiver/phase8.yaml",
        header + "extends: ../broken-evidence/phase8.yaml\n"
        "description: the waiver for the broken report expired; evidence_validity fails\n"
        'waivers: ["waivers/*.yaml"]\n',
    )
    put("expired-waiver/waivers/chat-4821.yaml", waiver.format(expires="2026-11-01T00:00:00Z"))

    put(
        "gate-switched-off/phase8.yaml",
        header + "extends: ../stale-evidence/phase8.yaml\n"
        "description: evidence_freshness is switched off with a reason; it reports skipped\n"
        "gates:\n  evidence_freshness:\n    enabled: false\n"
        "    reason: isolation suite moved to the new CI cluster this week (CHAT-4900)\n",
    )
    files += _drill_scenarios(out, rng)
    return files


def _perf_scenarios(out: Path, rng: random.Random) -> list[Path]:
    files = []

    def put(rel: str, text: str) -> None:
        files.append(write_text(out / "scenarios" / rel, text))

    at = (EVALUATION_TIME - timedelta(hours=12)).replace(minute=41, second=5)
    scenarios = {
        "perf-regression": (
            "a new 10.4.0 build lists channels 12 % slower; perf_regressions fails",
            demo_perf.Candidate({"tests/perf/test_channels.py::test_list_channels[members=1000]": 1.12}),
        ),
        "perf-budget": (
            "the k6 API test's p95 breaks its 250 ms budget; perf_budgets fails",
            demo_perf.Candidate({"http_req_duration": 1.04}, k6_p95=0.262),
        ),
        "perf-noise": (
            "the noisiest benchmark moved 2 %; nothing fails",
            demo_perf.Candidate({"tests/perf/test_search.py::test_search[query=long]": 1.02}),
        ),
    }
    for name, (description, candidate) in scenarios.items():
        commit = demo_perf._hex(rng)
        put(
            f"{name}/phase8.yaml",
            "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
            f"description: {description}\n"
            f'release:\n  commit: "{commit}"\n'
            'evidence:\n  benchmarks:\n    extra_paths: ["bench/**/*"]\n',
        )
        for rel, text in demo_perf.run_files(
            "bench", at, commit, "release/10.4", rng, EVALUATION_TIME, candidate
        ).items():
            put(f"{name}/{rel}", text)
    put(
        "perf-regression-waived/phase8.yaml",
        "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../perf-regression/phase8.yaml\n"
        "description: the list-channels regression is accepted with a waiver; nothing fails\n"
        'waivers: ["waivers/*.yaml"]\n',
    )
    put(
        "perf-regression-waived/waivers/chat-5012.yaml",
        """\
apiVersion: phase8/v1
kind: Waiver
gate: perf_regressions
subject: "tests/perf/test_channels.py::test_list_channels*"
rule: "relative:*"
owner: team:messaging
reason: Per-member permission checks (CHAT-5012) cost ~12 % on list_channels; accepted for 10.4.0.
ticket: CHAT-5012
expires: "2027-01-31T00:00:00Z"
""",
    )
    return files


def _upgrade_scenarios(out: Path) -> list[Path]:
    files = []
    header = "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
    at = EVALUATION_TIME - timedelta(hours=6)
    scenarios = {
        "upgrade-skips-stop": ("an install prepared 10.1.0 -> 10.4.0, skipping the required stop 10.2.0", "preflight_reports",
                               "preflight/umbrella-prod.json",
                               demo_upgrade.preflight("umbrella-prod", "10.1.0", "16.4", "10.4.0", "10.4.0", at)),
        "upgrade-pending-migrations": ("globex-prod still has background migrations pending", "preflight_reports",
                                       "preflight/globex-prod-rerun.json",
                                       demo_upgrade.preflight("globex-prod", "10.3.1", "15.8", "10.3.1", "10.3.0", at,
                                                              pending=["20261112_posts_add_thread_index",
                                                                       "20261114_files_backfill_checksums"])),
        "rollback-row-mismatch": ("the newest rollback drill lost 12 rows of globex's posts", "rollback_reports",
                                  "rollback/drill-10.4.0-staging-rerun.json",
                                  demo_upgrade.rollback(at, change=("posts", "globex", 12))),
    }  # fmt: skip
    for name, (description, kind, rel, text) in scenarios.items():
        folder = rel.split("/")[0]
        files.append(
            write_text(
                out / "scenarios" / name / "phase8.yaml",
                header + f'description: {description}\nevidence:\n  {kind}:\n    extra_paths: ["{folder}/*.json"]\n',
            )
        )
        files.append(write_text(out / "scenarios" / name / rel, text))
    return files


def _slo_scenarios(out: Path, rng: random.Random) -> list[Path]:
    files = []
    scenarios = {
        "slo-fast-burn": ("a chat-api canary fails 2.5 % of requests for an hour", "chat-api", 0.025,
                          timedelta(hours=1), timedelta(minutes=5)),
        "slo-budget-exhausted": ("chat-files has failed 0.5 % more requests for 30 days", "chat-files", 0.005,
                                 timedelta(days=30), timedelta(hours=3)),
        "slo-slow-burn": ("chat-realtime has failed 0.35 % of requests for 3 days", "chat-realtime", 0.0035,
                          timedelta(days=3), timedelta(hours=1)),
    }  # fmt: skip
    for name, (description, service, ratio, since, step) in scenarios.items():
        files.append(
            write_text(
                out / "scenarios" / name / "phase8.yaml",
                "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
                f"description: {description}\n"
                'evidence:\n  otel_metrics:\n    extra_paths: ["otel/*.jsonl"]\n',
            )
        )
        text = demo_slo.extra_errors(EVALUATION_TIME, service, ratio, since, step, rng)
        files.append(write_text(out / "scenarios" / name / "otel" / f"{service}-canary.jsonl", text))
    return files


def _drill_scenarios(out: Path, rng: random.Random) -> list[Path]:
    files = []

    def put(rel: str, text: str) -> None:
        files.append(write_text(out / "scenarios" / rel, text))

    header = "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
    journals = 'evidence:\n  drill_journals:\n    paths: ["drills/*.json"]\n'

    def recent_journals(folder: str, skip: str, days: int = 4) -> None:
        for index, drill in enumerate(DRILLS):
            if drill[0] not in (skip, LITMUS_DRILL):
                start = EVALUATION_TIME - timedelta(days=days + index, hours=rng.randint(0, 8))
                put(f"{folder}/drills/{drill[0]}.json", _journal(drill, start, rng))

    put(
        "overdue-drill/phase8.yaml",
        header + "description: the disk-full drill last ran 50 days ago; drill_evidence fails\n" + journals,
    )
    recent_journals("overdue-drill", "disk-full")
    put("overdue-drill/drills/disk-full.json", _journal(DRILLS[4], EVALUATION_TIME - timedelta(days=50), rng))

    put(
        "deviated-drill/phase8.yaml",
        header + "description: the latest cache-loss drill deviated; drill_evidence fails\n" + journals,
    )
    recent_journals("deviated-drill", "")
    put(
        "deviated-drill/drills/cache-loss-rerun.json",
        _journal(DRILLS[1], EVALUATION_TIME - timedelta(days=1), rng, deviated=True),
    )

    put(
        "missing-runbook/phase8.yaml",
        header + "description: a drill's runbook does not exist; drill_evidence fails\n"
        'evidence:\n  drill_catalog:\n    paths: ["drill-catalog.yaml"]\n',
    )
    put("missing-runbook/drill-catalog.yaml", _catalog({"region-network-cut": "drill-region-failover.md"}))
    return files
