"""The drill catalog (``phase8/v1`` ``kind: DrillCatalog``): which drills the platform commits to.

Its ``reviewed`` date is the evidence time, so a catalog nobody has looked at within its allowed
age goes stale like any other evidence.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import timedelta

from phase8_assets.evidence import EvidenceError, ReadResult, artifact_time, load_artifact, review_time_warnings
from phase8_assets.evidence.drill_runs import DrillRun
from phase8_assets.shared.clock import TimeParseError, parse_duration


@dataclass(frozen=True)
class CatalogDrill:
    id: str
    title: str
    fault: str
    service: str
    owner: str
    cadence: str
    grace: str | None
    match_title: str | None
    match_tags: tuple[str, ...]
    runbook: str
    recovery_objective: timedelta | None
    recovery_objective_text: str | None
    environments: tuple[str, ...]
    tenants: tuple[str, ...]

    def matches(self, run: DrillRun) -> bool:
        if self.match_title and not fnmatch.fnmatchcase(run.title.lower(), self.match_title.lower()):
            return False
        return all(tag in run.tags for tag in self.match_tags)

    @property
    def match_text(self) -> str:
        parts = [f"title ~ {self.match_title!r}"] if self.match_title else []
        parts += [f"tag {t!r}" for t in self.match_tags]
        return " and ".join(parts)


def read(data: bytes, uri: str) -> ReadResult:
    doc = load_artifact(data, uri, "DrillCatalog")
    reviewed = artifact_time(doc, "reviewed")
    drills, seen = [], set()
    for i, item in enumerate(doc["drills"]):
        if item["id"] in seen:
            raise EvidenceError(f"drills[{i}].id", f"{item['id']!r} is declared twice")
        seen.add(item["id"])
        objective = item.get("recovery_objective")
        try:
            for key in ("cadence", "grace"):
                if item.get(key):
                    parse_duration(item[key], key)
            limit = parse_duration(objective, "recovery_objective") if objective else None
        except TimeParseError as exc:
            raise EvidenceError(f"drills[{i}]", str(exc)) from exc
        drills.append(
            CatalogDrill(
                id=item["id"],
                title=item["title"],
                fault=item["fault"],
                service=item["service"],
                owner=item["owner"],
                cadence=item["cadence"],
                grace=item.get("grace"),
                match_title=item["match"].get("title"),
                match_tags=tuple(item["match"].get("tags") or ()),
                runbook=item["runbook"],
                recovery_objective=limit,
                recovery_objective_text=objective,
                environments=tuple(item.get("environments") or ()),
                tenants=tuple(item.get("tenants") or ()),
            )
        )
    return ReadResult(
        observed_at=reviewed.at,
        timestamp_field="reviewed",
        summary={"drills": [d.id for d in drills]},
        records=drills,
        warnings=review_time_warnings("reviewed", doc["reviewed"], reviewed),
    )
