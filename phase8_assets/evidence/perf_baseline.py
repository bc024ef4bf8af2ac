"""Performance anchors (``phase8/v1`` ``kind: PerfBaseline``, evidence kind ``perf_baselines``).

Written by ``phase8 perf baseline --freeze`` and committed by the team: per benchmark, parameters
and measure, the statistics of the reference run means (their count, mean, and the mean and
between-run standard deviation of their logarithms) and the commit and release they came from.
A drift rule of ``PerfBudgets`` judges each release against it, so a creep of small steps that
the moving baseline follows still shows. Accepting a creep is freezing a new anchor: a reviewed
change to this file, never a code change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from phase8_assets.evidence import EvidenceError, ReadResult, artifact_time, load_artifact


@dataclass(frozen=True)
class Anchor:
    benchmark: str
    params: str
    measure: str
    unit: str
    direction: str
    commit: str
    release: str
    runs: int
    mean: float
    log_mean: float
    log_sd: float

    @property
    def key(self) -> tuple[str, str, str]:
        return self.benchmark, self.params, self.measure


@dataclass(frozen=True)
class PerfBaseline:
    version: str
    commit: str
    frozen_at: datetime
    anchors: dict[tuple[str, str, str], Anchor]


def _finite(value: object, where: str) -> float:
    """A statistic of the anchor as a float; a number beyond the float range (or not finite) is refused at ``where``."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise EvidenceError(where, f"expected a finite number, got {str(value)[:40]}")
    return number


def read(data: bytes, uri: str) -> ReadResult:
    doc = load_artifact(data, uri, "PerfBaseline")
    frozen = artifact_time(doc, "frozen_at").at
    anchors: dict[tuple[str, str, str], Anchor] = {}
    for i, item in enumerate(doc["benchmarks"]):
        anchor = Anchor(
            benchmark=item["benchmark"],
            params=item.get("params") or "",
            measure=item["measure"],
            unit=item["unit"],
            direction=item["direction"],
            commit=item["commit"],
            release=item["release"],
            runs=int(item["runs"]),
            mean=_finite(item["mean"], f"benchmarks[{i}].mean"),
            log_mean=_finite(item["log_mean"], f"benchmarks[{i}].log_mean"),
            log_sd=_finite(item["log_sd"], f"benchmarks[{i}].log_sd"),
        )
        if anchor.key in anchors:
            raise EvidenceError(f"benchmarks[{i}]", f"{'/'.join(anchor.key)!r} is anchored twice")
        anchors[anchor.key] = anchor
    release = doc["release"]
    return ReadResult(
        observed_at=frozen,
        timestamp_field="frozen_at",
        summary={"release": release["version"], "commit": release["commit"], "benchmarks": len(anchors)},
        records=[PerfBaseline(release["version"], release["commit"], frozen, anchors)],
    )
