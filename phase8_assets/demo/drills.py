"""Chaos Toolkit journals (naive timestamps, as chaoslib writes them), LitmusChaos results, the drill catalog and the drill scenarios."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from phase8_assets.demo.config import EVALUATION_TIME, TENANTS
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import write_text

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


def _naive(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def journal(drill: tuple[str, str, str], start: datetime, rng: random.Random, deviated: bool = False) -> str:
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


def chaos_result(drill_id: str, at: datetime, run: int) -> str:
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


def catalog(runbook_names: dict[str, str] | None = None) -> str:
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


def scenarios(out: Path, rng: random.Random) -> list[Path]:
    files = []

    def put(rel: str, text: str) -> None:
        files.append(write_text(out / "scenarios" / rel, text))

    header = "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
    journals = 'evidence:\n  drill_journals:\n    paths: ["drills/*.json"]\n'

    def recent_journals(folder: str, skip: str, days: int = 4) -> None:
        for index, drill in enumerate(DRILLS):
            if drill[0] not in (skip, LITMUS_DRILL):
                start = EVALUATION_TIME - timedelta(days=days + index, hours=rng.randint(0, 8))
                put(f"{folder}/drills/{drill[0]}.json", journal(drill, start, rng))

    put(
        "overdue-drill/phase8.yaml",
        header + "description: the disk-full drill last ran 50 days ago; drill_evidence fails\n" + journals,
    )
    recent_journals("overdue-drill", "disk-full")
    put("overdue-drill/drills/disk-full.json", journal(DRILLS[4], EVALUATION_TIME - timedelta(days=50), rng))

    put(
        "deviated-drill/phase8.yaml",
        header + "description: the latest cache-loss drill deviated; drill_evidence fails\n" + journals,
    )
    recent_journals("deviated-drill", "")
    put(
        "deviated-drill/drills/cache-loss-rerun.json",
        journal(DRILLS[1], EVALUATION_TIME - timedelta(days=1), rng, deviated=True),
    )

    put(
        "missing-runbook/phase8.yaml",
        header + "description: a drill's runbook does not exist; drill_evidence fails\n"
        'evidence:\n  drill_catalog:\n    paths: ["drill-catalog.yaml"]\n',
    )
    put("missing-runbook/drill-catalog.yaml", catalog({"region-network-cut": "drill-region-failover.md"}))
    return files
