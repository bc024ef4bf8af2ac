"""Tenancy-isolation evidence: the isolation matrix and one JUnit suite per dimension, as pytest writes
them with the ``phase8_assets.isolation`` plugin (properties per testcase), and the isolation scenarios."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path

from phase8_assets.demo.config import EVALUATION_TIME, TENANTS
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import write_text

DIMENSIONS = ["data", "events", "cache"]
# The platform's tenant-scoped resources and the dimensions each must be covered in.
MATRIX_RESOURCES = {
    "channels": ["data", "events", "cache"],
    "messages": ["data", "events", "cache"],
    "files": ["data", "cache"],
    "search_index": ["data", "cache"],
    "webhooks": ["data", "events"],
    "plugin_kv": ["data"],
}
PAIRS = [(a, b) for a, b in zip(TENANTS, TENANTS[1:] + TENANTS[:1], strict=True)]

MATRIX = """\
apiVersion: phase8/v1
kind: IsolationMatrix
reviewed: "2026-10-05"
owner: team:tenancy
max_age: P7D          # a cell is covered by a passing result at most this old
flaky: error          # a test that passed only on rerun is a leak
resources:
  - name: channels
    dimensions: [data, events, cache]
  - name: messages
    description: message bodies, edits, reactions; the websocket fan-out of new posts
    dimensions: [data, events, cache]
    max_age: P3D      # the busiest path: tested on every merge
    owner: team:messaging
  - name: files
    dimensions: [data, cache]
  - name: search_index
    description: eventually consistent; its isolation tests poll, and a slow poll may need a rerun
    dimensions: [data, cache]
    flaky: warning
  - name: webhooks
    dimensions: [data, events]
  - name: plugin_kv
    dimensions: [data]
"""


def junit(
    dimension: str,
    at: datetime,
    rng: random.Random,
    failing: dict[str, str] | None = None,
    flaky: dict[str, str] | None = None,
    skipped: dict[str, str] | None = None,
) -> str:
    """The suite of one dimension. ``failing``/``flaky``/``skipped`` map a resource to a message: every
    test of that resource fails, fails once and passes on rerun, or is skipped."""
    failing, flaky, skipped = failing or {}, flaky or {}, skipped or {}
    suites = ET.Element("testsuites", name=f"tenancy-isolation-{dimension}")
    resources = [r for r, dims in MATRIX_RESOURCES.items() if dimension in dims]
    cases = [(pair, r) for r in resources for pair in PAIRS]
    suite = ET.SubElement(
        suites, "testsuite", name=f"isolation.{dimension}", errors="0", timestamp=format_timestamp(at),
        hostname="ci-runner-07",
    )  # fmt: skip
    total, counts = 0.0, {"tests": 0, "failures": 0, "skipped": 0}
    for (a, b), resource in cases:
        name = f"test_{dimension}_isolation[{a}-{b}-{resource}]"
        attempts = ["failed", "passed"] if resource in flaky else ["failed" if resource in failing else "passed"]
        for attempt in attempts:
            seconds = round(rng.uniform(0.02, 0.9), 3)
            total += seconds
            counts["tests"] += 1
            case = ET.SubElement(
                suite, "testcase", classname=f"isolation.{dimension}.test_{resource}", name=name, time=f"{seconds:.3f}"
            )
            case_props = ET.SubElement(case, "properties")
            for key, value in (("dimension", dimension), ("resource", resource), ("tenants", f"{a},{b}")):
                ET.SubElement(case_props, "property", name=f"phase8.{key}", value=value)
            if resource in skipped:
                ET.SubElement(case, "skipped", message=skipped[resource])
                counts["skipped"] += 1
            elif attempt == "failed":
                message = (failing.get(resource) or flaky[resource]).format(a=a, b=b)
                failure = ET.SubElement(case, "failure", message=message)
                failure.text = f"AssertionError: {message}"
                counts["failures"] += 1
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{total:.3f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def evidence(at: datetime, rng: random.Random) -> dict[str, str]:
    """The demo root's matrix and its three suites, two days before ``at`` (hours apart)."""
    out = {"policy/isolation-matrix.yaml": MATRIX}
    for index, dimension in enumerate(DIMENSIONS):
        out[f"evidence/isolation/{dimension}.xml"] = junit(dimension, at - timedelta(days=2, hours=index), rng)
    return out


def scenarios(out: Path, rng: random.Random) -> list[Path]:
    """One root per way the isolation gate fails; each replaces the three suites."""
    header = "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
    isolation = 'evidence:\n  isolation_results:\n    paths: ["isolation/*.xml"]\n'
    recent = {d: EVALUATION_TIME - timedelta(days=1, hours=i) for i, d in enumerate(DIMENSIONS)}
    cases = {
        "isolation-cache-leak": (
            "globex was served acme's cached file listing; tenancy_isolation fails",
            {
                "cache": {
                    "failing": {
                        "files": "{b} received {a}'s cached /api/v4/files listing (cache key without the tenant)"
                    }
                }
            },
            recent,
        ),
        "isolation-uncovered-cell": (
            "the webhooks event tests were skipped: their cell is not covered; tenancy_isolation fails",
            {"events": {"skipped": {"webhooks": "webhook fan-out stub not available on this runner"}}},
            recent,
        ),
        "isolation-stale-results": (
            "the data suite last ran 4 days ago; messages x data may be 3 days old; tenancy_isolation fails",
            {},
            {**recent, "data": EVALUATION_TIME - timedelta(days=4)},
        ),
        "isolation-flaky-pass": (
            "a messages event test failed, then passed on rerun; tenancy_isolation fails",
            {"events": {"flaky": {"messages": "{b}'s websocket received 1 frame of {a}'s channel"}}},
            recent,
        ),
    }
    files = []
    for name, (description, changes, times) in cases.items():
        folder = out / "scenarios" / name
        files.append(
            write_text(folder / "phase8.yaml", header + f"description: {json.dumps(description)}\n" + isolation)
        )
        for dimension in DIMENSIONS:
            text = junit(dimension, times[dimension], rng, **changes.get(dimension, {}))
            files.append(write_text(folder / "isolation" / f"{dimension}.xml", text))
    return files
