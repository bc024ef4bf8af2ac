"""The isolation matrix (``phase8/v1`` ``kind: IsolationMatrix``): which tenant-scoped resources must be
covered in which isolation dimensions (data, events, cache), and how old the covering result may be.

Its ``reviewed`` date is the evidence time. The results themselves are JUnit XML (``junit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from phase8_assets.evidence import EvidenceError, ReadResult, artifact_time, load_artifact, review_time_warnings
from phase8_assets.shared.clock import TimeParseError, parse_duration


@dataclass(frozen=True)
class Cell:
    """One required (resource, dimension) of the matrix, with its own limits."""

    resource: str
    dimension: str
    max_age: timedelta
    max_age_text: str
    flaky: str  # error | warning: the severity of a flaky pass
    owner: str | None


def _duration(text: str, field: str) -> timedelta:
    try:
        return parse_duration(text, field)
    except TimeParseError as exc:
        raise EvidenceError(field, str(exc).split(": ", 1)[-1]) from exc


def read_matrix(data: bytes, uri: str) -> ReadResult:
    doc = load_artifact(data, uri, "IsolationMatrix")
    reviewed = artifact_time(doc, "reviewed")
    default_age = _duration(doc["max_age"], "max_age")
    cells, seen = [], set()
    for i, resource in enumerate(doc["resources"]):
        if resource["name"] in seen:
            raise EvidenceError(f"resources[{i}].name", f"{resource['name']!r} is declared twice")
        seen.add(resource["name"])
        text = resource.get("max_age") or doc["max_age"]
        age = _duration(text, f"resources[{i}].max_age") if resource.get("max_age") else default_age
        for dimension in resource["dimensions"]:
            cells.append(
                Cell(
                    resource=resource["name"],
                    dimension=dimension,
                    max_age=age,
                    max_age_text=text,
                    flaky=resource.get("flaky") or doc.get("flaky") or "error",
                    owner=resource.get("owner") or doc.get("owner"),
                )
            )
    return ReadResult(
        observed_at=reviewed.at,
        timestamp_field="reviewed",
        summary={"resources": len(seen), "cells": len(cells)},
        records=cells,
        warnings=review_time_warnings("reviewed", doc["reviewed"], reviewed),
    )
