"""Tenancy-isolation JUnit suites, one per dimension, as pytest writes them with ``record_property``."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from datetime import datetime

from phase8_assets.demo.config import TENANTS
from phase8_assets.shared.clock import format_timestamp

RESOURCES = ["channels", "messages", "files", "search_index", "webhooks", "plugin_kv"]
DIMENSIONS = ["data", "events", "cache"]


def junit(dimension: str, at: datetime, rng: random.Random, broken_case: str | None = None) -> str:
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
