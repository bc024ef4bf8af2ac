"""Scenarios of the evidence gates: a truncated Surefire report, stale and missing results, waivers, a gate switched off."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from phase8_assets.demo.config import EVALUATION_TIME
from phase8_assets.demo.isolation import DIMENSIONS, junit
from phase8_assets.shared.reports import write_text

TRUNCATED_SUREFIRE = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" name="isolation.files.TenantFilesTest" time="4.2" tests="18" errors="0" skipped="0" failures="0" timestamp="2026-11-19T08:14:02Z">
  <testcase name="test_files_isolation[acme-files]" classname="isolation.files.TenantFilesTest" time="0.21"/>
  <testcase name="test_files_isolation[globex-files]" classname="isolation.files.TenantFilesTest" time="0.19">
    <system-out><![CDATA[2026-11-19 08:14:03 INFO  starting tenant globex
"""


def scenarios(out: Path) -> list[Path]:
    files = []

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
            junit(dimension, EVALUATION_TIME - timedelta(days=1, hours=index), random.Random(index)),
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
            junit(dimension, EVALUATION_TIME - timedelta(days=12 + index), random.Random(10 + index)),
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
requested_by: priya@chatterbox.example
approved_by: deniz@chatterbox.example
approved_at: "{approved}"
expires: "{expires}"
---
apiVersion: phase8/v1
kind: Waiver
gate: tenancy_isolation
subject: "*/TEST-isolation.files.TenantFilesTest.xml"
rule: results-readable
owner: team:tenancy
reason: a killed run's truncated copy of the files suite; its complete rerun passed.
ticket: CHAT-4822
requested_by: priya@chatterbox.example
approved_by: tomas@chatterbox.example
approved_at: "{approved}"
expires: "{expires}"
---
apiVersion: phase8/v1
kind: Waiver
gate: program_completeness
subject: "*/TEST-isolation.files.TenantFilesTest.xml"
rule: readable
owner: team:tenancy
reason: the isolation item's run evidence is the same truncated copy; its complete rerun kept the cadence.
ticket: CHAT-4823
requested_by: priya@chatterbox.example
approved_by: deniz@chatterbox.example
approved_at: "{approved}"
expires: "{expires}"
"""
    put(
        "waived-broken-evidence/phase8.yaml",
        header + "extends: ../broken-evidence/phase8.yaml\n"
        "description: the broken isolation report is waived; the gate passes\n"
        'extra_waivers: ["waivers/*.yaml"]\n',
    )
    put(
        "waived-broken-evidence/waivers/chat-4821.yaml",
        waiver.format(approved="2026-11-19T10:00:00Z", expires="2026-12-31T00:00:00Z"),
    )
    put(
        "expired-waiver/phase8.yaml",
        header + "extends: ../broken-evidence/phase8.yaml\n"
        "description: the waiver for the broken report expired; evidence_validity fails\n"
        'extra_waivers: ["waivers/*.yaml"]\n',
    )
    put(
        "expired-waiver/waivers/chat-4821.yaml",
        waiver.format(approved="2026-10-15T10:00:00Z", expires="2026-11-01T00:00:00Z"),
    )

    put(
        "gate-switched-off/phase8.yaml",
        header + "extends: ../stale-evidence/phase8.yaml\n"
        "description: evidence_freshness, tenancy_isolation and program_completeness are switched off with a reason;"
        " they report skipped\n"
        "gates:\n  evidence_freshness:\n    enabled: false\n"
        "    reason: isolation suite moved to the new CI cluster this week (CHAT-4900)\n"
        "  tenancy_isolation:\n    enabled: false\n"
        "    reason: isolation suite moved to the new CI cluster this week (CHAT-4900)\n"
        "  program_completeness:\n    enabled: false\n"
        "    reason: isolation suite moved to the new CI cluster this week (CHAT-4900)\n",
    )
    return files
