"""Demo upgrade evidence: the upgrade path (8 versions, 2 required stops, 2 supported ESRs),
preflight reports from four installs and CI, and a passing rollback drill."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

from phase8_assets.demo.config import EVALUATION_TIME
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import write_text

UPGRADE_PATH = """\
apiVersion: phase8/v1
kind: UpgradePath
description: Chatterbox server releases. Required stops carry background migrations that must finish first.
reviewed: "2026-11-02"
releases:
  - {version: 9.10.0}
  - {version: 9.11.0, esr: true}
  - {version: 10.0.0, required_stop: true, upgrade_from: 9.10.0}
  - {version: 10.1.0}
  - {version: 10.2.0, required_stop: true}
  - {version: 10.3.0, esr: true}
  - {version: 10.3.1}
  - {version: 10.4.0, upgrade_from: 10.2.0}
supported_sources: [9.11.0, 10.3.0]
skew:
  - {component: jobserver, max_minor_behind: 1}
  - {component: push-proxy, max_minor_behind: 2}
database: {engine: postgres, min_version: "14"}
"""

INSTALLS = [
    # install, source, database version, and the jobserver / push-proxy versions that will run with
    # the upgraded server (the preflight checks their skew against the target)
    ("acme-prod", "10.3.0", "16.4", "10.4.0", "10.3.0"),
    ("globex-prod", "10.3.1", "15.8", "10.3.1", "10.3.0"),
    ("initech-prod", "10.2.0", "16.2", "10.4.0", "10.2.0"),
    ("ci-upgrade-test", "10.3.1", "16.4", "10.4.0", "10.4.0"),
]
TABLES = ["users", "teams", "channels", "posts", "files", "reactions", "plugin_kv"]
TENANTS = ["acme", "globex", "initech"]


def preflight(install: str, source: str, db: str, jobserver: str, push: str, at: datetime, target: str = "10.4.0",
              pending: list[str] | None = None) -> str:  # fmt: skip
    doc = {
        "apiVersion": "phase8/v1",
        "kind": "PreflightReport",
        "install": install,
        "source": source,
        "target": target,
        "generated_at": format_timestamp(at),
        "database": {"engine": "postgres", "version": db},
        "migrations": {"pending": pending or [], "failed": []},
        "disk": {"free_bytes": 412_000_000_000, "required_bytes": 38_000_000_000},
        "components": [
            {"name": "server", "version": source},
            {"name": "jobserver", "version": jobserver},
            {"name": "push-proxy", "version": push},
        ],  # fmt: skip
        "checks": [
            {"name": "config-valid", "status": "pass"},
            {"name": "license-valid", "status": "pass"},
            {"name": "plugins-compatible", "status": "pass", "detail": "14 plugins checked against the 10.4 API"},
            {"name": "search-index-healthy", "status": "pass"},
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def _checksum(*parts) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:16]


def rollback(at: datetime, change: tuple[str, str, int] | None = None) -> str:
    """A drill 10.3.1 -> 10.4.0 -> 10.3.1 in staging; ``change`` = (table, tenant, rows lost)."""
    tables = []
    for i, table in enumerate(TABLES):
        for tenant in TENANTS if table not in ("users",) else [None]:
            rows = 1000 * (i + 3) + (len(tenant) * 37 if tenant else 0)
            before = _checksum(table, tenant, rows)
            after_rows, after = rows, before
            if change and change[0] == table and change[1] == tenant:
                after_rows, after = rows - change[2], _checksum(table, tenant, rows - change[2])
            entry = {"name": table, "rows_before": rows, "rows_after": after_rows, "checksum_before": before,
                     "checksum_after": after}  # fmt: skip
            if tenant:
                entry["tenant"] = tenant
            tables.append(entry)
    schema = _checksum("schema", "10.3.1")
    doc = {
        "apiVersion": "phase8/v1",
        "kind": "RollbackReport",
        "environment": "staging",
        "from_version": "10.3.1",
        "to_version": "10.4.0",
        "generated_at": format_timestamp(at),
        "schema": {"before": schema, "after": schema},
        "tables": tables,
    }
    return json.dumps(doc, indent=2) + "\n"


def evidence(at: datetime) -> dict[str, str]:
    files = {"policy/upgrade-path.yaml": UPGRADE_PATH}
    for i, install in enumerate(INSTALLS):
        files[f"evidence/upgrade/preflight/{install[0]}.json"] = preflight(*install, at - timedelta(days=1, hours=i))
    files["evidence/upgrade/rollback/drill-10.4.0-staging.json"] = rollback(at - timedelta(days=3))
    return files


def scenarios(out: Path) -> list[Path]:
    files = []
    header = "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
    at = EVALUATION_TIME - timedelta(hours=6)
    scenarios = {
        "upgrade-skips-stop": ("an install prepared 10.1.0 -> 10.4.0, skipping the required stop 10.2.0", "preflight_reports",
                               "preflight/umbrella-prod.json",
                               preflight("umbrella-prod", "10.1.0", "16.4", "10.4.0", "10.4.0", at)),
        "upgrade-pending-migrations": ("globex-prod still has background migrations pending", "preflight_reports",
                                       "preflight/globex-prod-rerun.json",
                                       preflight("globex-prod", "10.3.1", "15.8", "10.3.1", "10.3.0", at,
                                                              pending=["20261112_posts_add_thread_index",
                                                                       "20261114_files_backfill_checksums"])),
        "rollback-row-mismatch": ("the newest rollback drill lost 12 rows of globex's posts", "rollback_reports",
                                  "rollback/drill-10.4.0-staging-rerun.json",
                                  rollback(at, change=("posts", "globex", 12))),
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
