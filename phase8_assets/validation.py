"""``phase8 validate``: check evidence files against their readers and schemas, without gating."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from phase8_assets.evidence import EvidenceError, read_evidence, readers
from phase8_assets.evidence.collect import collect
from phase8_assets.evidence.config import CONFIG_NAME, ConfigError, load_config
from phase8_assets.shared.artifacts import ArtifactError, validate_artifact
from phase8_assets.shared.yaml_loader import YamlError, load_yaml_documents


def guess_kind(path: Path, data: bytes) -> str | None:
    suffix = path.suffix.lower()
    if path.name.endswith(".tar.gz"):
        return "plugin_bundles"
    if suffix == ".xml":
        return "isolation_results"
    if suffix == ".md":
        return "runbooks"
    if suffix == ".json":
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        except RecursionError:
            raise EvidenceError("(document)", "nested too deeply to read (a recursion limit was reached)") from None
        if isinstance(doc, dict) and (
            "chaoslib-version" in doc or {"experiment", "status"} <= doc.keys() or "steady-state-hypothesis" in doc
        ):
            return "drill_journals"
        if (
            isinstance(doc, dict)
            and doc.get("status") in ("pass", "warn", "fail")
            and ({"checks", "details"} & doc.keys())
        ):
            return "health_responses"
    if suffix in (".yaml", ".yml") and b"litmuschaos.io/" in data and b"ChaosResult" in data:
        return "chaos_results"
    return None


# Our own artifacts that are evidence: validated by their reader, which checks more than the schema.
ARTIFACT_KINDS = {
    "DrillCatalog": "drill_catalog",
    "PerfBudgets": "perf_budgets",
    "PerfBaseline": "perf_baselines",
    "UpgradePath": "upgrade_path",
    "PreflightReport": "preflight_reports",
    "RollbackReport": "rollback_reports",
    "CostAllocation": "cost_allocation",
    "CostBudgets": "cost_budgets",
    "IsolationMatrix": "isolation_matrix",
    "PluginTrustPolicy": "plugin_trust",
}


def _validate_root(folder: Path) -> Iterator[tuple[str, bool]]:
    try:
        config = load_config([str(folder)], known_kinds=set(readers()))
    except ConfigError as exc:
        yield str(exc), False
        return
    yield f"{config.source}: EvidenceConfig", True
    batch = collect(config)
    for f in batch.files:
        yield f"{f.uri}: {f.kind}", True
    for r in batch.rejections:
        yield str(r), False
    for kind, patterns in batch.unmatched.items():
        yield f"{kind}: no files matched {', '.join(patterns)}", False


def validate_path(path: Path, kind: str | None = None) -> Iterator[tuple[str, bool]]:
    if path.is_dir():
        if (path / CONFIG_NAME).is_file():
            yield from _validate_root(path)
        else:
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield from validate_path(child, kind)
        return
    if path.name == CONFIG_NAME:
        yield from _validate_root(path.parent)
        return
    data = path.read_bytes()
    artifact = re.search(rb'^\s*"?kind"?:\s*"?(\w+)', data, re.M)
    if kind is None and artifact and artifact.group(1).decode() in ARTIFACT_KINDS:
        kind = ARTIFACT_KINDS[artifact.group(1).decode()]
    elif kind is None and path.suffix.lower() in (".yaml", ".yml") and b"phase8/v1" in data:
        try:
            docs = load_yaml_documents(data, str(path))
            for index, doc in enumerate(docs):
                validate_artifact(doc, f"{path}#{index}" if len(docs) > 1 else str(path))
                yield f"{path}{f'#{index}' if len(docs) > 1 else ''}: {doc['kind']}", True
        except (YamlError, ArtifactError) as exc:
            yield str(exc), False
        return
    try:
        kind = kind or guess_kind(path, data)
    except EvidenceError as exc:
        yield f"{path}: {exc.field}: {exc.reason}", False
        return
    if kind is None:
        yield f"{path}: cannot tell the evidence kind; pass --kind ({'|'.join(readers())})", False
        return
    if kind not in readers():
        yield f"{path}: unknown evidence kind {kind!r}; expected one of {'|'.join(readers())}", False
        return
    try:
        result = read_evidence(kind, data, str(path))
    except EvidenceError as exc:
        yield f"{path}: {exc.field}: {exc.reason}", False
        return
    # A reader that reads past contract violations (health responses) lists them: they are invalid here.
    violations = result.summary.get("violations") or []
    for violation in violations:
        yield f"{path}: {violation['field']}: {violation['reason']}", False
    notes = f" ({'; '.join(result.warnings)})" if result.warnings else ""
    if not violations:
        yield f"{path}: {kind}{notes}", True
