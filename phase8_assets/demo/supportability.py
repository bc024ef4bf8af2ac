"""Demo evidence of the ``supportability`` gate: captured ``/health`` responses of the platform's
services, and scenarios with a stale runbook, a broken anchor, a failing and a contract-breaking
health response."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from phase8_assets.demo.config import EVALUATION_TIME, RELEASE
from phase8_assets.demo.runbooks import runbook
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import write_text

# service -> (component:measurement, componentType, observedValue, observedUnit, status, output)
SERVICES = {
    "chat-api": [
        ("postgres:responseTime", "datastore", 12, "ms", "pass", ""),
        ("postgres:connections", "datastore", 41, "connections", "pass", ""),
        ("uptime", "system", 604800, "s", "pass", ""),
    ],
    "chat-realtime": [
        ("redis:responseTime", "datastore", 2, "ms", "pass", ""),
        ("websocket:sessions", "component", 18230, "sessions", "pass", ""),
    ],
}


def health_response(service: str, checks: list[tuple], at: datetime, status: str = "pass") -> str:
    body = {
        "status": status,
        "version": "1",
        "releaseId": RELEASE["version"],
        "serviceId": service,
        "description": f"health of {service}",
        "checks": {
            key: [
                {
                    "componentType": ctype,
                    "observedValue": value,
                    "observedUnit": unit,
                    "status": check_status,
                    "time": format_timestamp(at),
                    "output": output,
                }
            ]
            for key, ctype, value, unit, check_status, output in checks
        },
    }
    return json.dumps(body, indent=2) + "\n"


def evidence(at: datetime) -> dict[str, str]:
    captured = at - timedelta(minutes=20)
    return {
        f"evidence/health/{service}.json": health_response(service, checks, captured)
        for service, checks in SERVICES.items()
    }


SEARCH_BODY = """\
## Symptoms
Search answers slowly or not at all; `chat-search` pages.

## Checks
1. `curl -s https://chat-search.internal/health | jq .status`
2. If the database is the cause, follow [database failover](../../../docs/ops/drill-db-failover.md#recovery).

## Escalation
team:search, then the incident commander."""


def scenarios(out: Path) -> list[Path]:
    files = []

    def put(rel: str, text: str) -> None:
        files.append(write_text(out / "scenarios" / rel, text))

    header = "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
    extra_runbook = 'evidence:\n  runbooks:\n    extra_paths: ["runbooks/*.md"]\n'
    extra_health = 'evidence:\n  health_responses:\n    extra_paths: ["health/*.json"]\n'

    put(
        "stale-runbook/phase8.yaml",
        header + "description: a runbook is past its review date; supportability fails\n" + extra_runbook,
    )
    put(
        "stale-runbook/runbooks/chat-search.md",
        runbook("Chat search", "team:search", "2026-03-02", "P90D", ["ChatSearchDown"], SEARCH_BODY),
    )

    put(
        "broken-anchor/phase8.yaml",
        header
        + "description: a runbook links to a heading that does not exist; supportability fails\n"
        + extra_runbook,
    )
    put(
        "broken-anchor/runbooks/chat-search.md",
        runbook(
            "Chat search", "team:search", "2026-11-02", "P90D", ["ChatSearchDown"],
            SEARCH_BODY.replace("drill-db-failover.md#recovery", "drill-db-failover.md#promote-the-replica"),
        ),
    )  # fmt: skip

    captured = EVALUATION_TIME - timedelta(minutes=15)
    put(
        "health-fail/phase8.yaml",
        header + "description: a captured health response reports fail; supportability fails\n" + extra_health,
    )
    put(
        "health-fail/health/chat-search.json",
        health_response(
            "chat-search",
            [
                (
                    "postgres:connections",
                    "datastore",
                    100,
                    "connections",
                    "fail",
                    "connection pool exhausted (100/100)",
                ),
                ("postgres:responseTime", "datastore", 2400, "ms", "warn", ""),
            ],
            captured,
            status="fail",
        ),
    )

    put(
        "health-contract/phase8.yaml",
        header + "description: a captured health response breaks the contract; supportability fails\n" + extra_health,
    )
    legacy = {
        "status": "pass",
        "version": "1",
        "releaseID": RELEASE["version"],
        "serviceID": "chat-search",
        "details": {
            "postgres:responseTime": [
                {"componentType": "datastore", "metricValue": 14, "metricUnit": "ms", "status": "pass",
                 "time": format_timestamp(captured)}
            ]
        },
    }  # fmt: skip
    put("health-contract/health/chat-search.json", json.dumps(legacy, indent=2) + "\n")
    return files
