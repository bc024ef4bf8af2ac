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

from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import write_text

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


def _journal(drill: tuple[str, str, str], start: datetime, rng: random.Random) -> str:
    drill_id, title, _owner = drill
    inject = rng.uniform(20, 90)
    recover = rng.uniform(30, 240)
    end = start + timedelta(seconds=inject + recover + 10)

    def probe(name: str, at: datetime) -> dict:
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
            "output": {"status": 200, "headers": {"content-type": "application/json"}},
            "status": "succeeded",
            "start": _naive(at),
            "end": _naive(at + timedelta(seconds=0.4)),
            "duration": 0.4,
            "tolerance_met": True,
        }

    doc = {
        "chaoslib-version": "1.42.0",
        "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
        "node": "chaos-runner-02",
        "experiment": {
            "version": "1.0.0",
            "title": f"{title} drill",
            "description": f"Inject {title} and verify the service recovers within its objective.",
            "tags": ["phase8", f"drill:{drill_id}"],
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
        "status": "completed",
        "deviated": False,
        "steady_states": {
            "before": {"steady_state_met": True, "probes": [probe("api-ping", start)]},
            "after": {"steady_state_met": True, "probes": [probe("api-ping", end - timedelta(seconds=1))]},
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
    for month in range(4):
        for index, drill in enumerate(DRILLS):
            start = EVALUATION_TIME - timedelta(days=30 * month + 3 + 2 * index, hours=rng.randint(0, 8))
            put(f"evidence/drills/{drill[0]}/{start:%Y-%m-%d}.json", _journal(drill, start, rng))
    for slug, (title, owner, body) in RUNBOOKS.items():
        put(f"docs/ops/{slug}.md", _runbook(slug, title, owner, "2026-10-02", body))
    for drill_id, title, owner in DRILLS:
        body = (
            f"## Drill\nInject {title} in staging, then production, monthly.\n\n"
            f"## Recovery\nFollow the service dashboard; escalate to {owner} if recovery exceeds its objective."
        )
        put(f"docs/ops/drill-{drill_id}.md", _runbook(drill_id, f"Drill: {title}", owner, "2026-09-15", body))
    files += _scenarios(out, rng)
    return files


SCENARIOS_README = """\
# Scenarios

Each folder is a complete evidence root that `extends:` the demo config and changes one thing.
Run one with `phase8 gate --evidence data/scenarios/<name> --out out/<name>`.

| scenario | gate it fails | why |
|---|---|---|
| `broken-evidence` | `evidence_validity` | one isolation report is a truncated Surefire XML file (unclosed CDATA) |
| `stale-evidence` | `evidence_freshness` | the newest drill journal is 95 days old; drill journals may be 35 days old |
| `missing-evidence` | `evidence_freshness` | the isolation results folder is empty: missing evidence fails closed |
| `waived-broken-evidence` | none (passes) | `broken-evidence` plus a `kind: Waiver` for the broken file (owner, ticket, expiry) |
| `expired-waiver` | `evidence_validity` | the same waiver, expired: it no longer applies and is reported |
| `gate-switched-off` | none (passes) | `stale-evidence` with `evidence_freshness` switched off: reported `skipped` with the reason |
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
        "description: the newest drill journal is 95 days old; evidence_freshness fails\n"
        'evidence:\n  drill_journals:\n    paths: ["drills/*.json"]\n',
    )
    put("stale-evidence/drills/db-failover.json", _journal(DRILLS[0], EVALUATION_TIME - timedelta(days=95), rng))
    put("stale-evidence/drills/cache-loss.json", _journal(DRILLS[1], EVALUATION_TIME - timedelta(days=120), rng))

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
        "    reason: drill programme paused during the datacenter move (CHAT-4900)\n",
    )
    return files
