"""``phase8 validate``: check evidence files against their readers and schemas, without gating."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from phase8_assets.evidence import EvidenceError, read_evidence, readers
from phase8_assets.evidence.collect import collect, waiver_from
from phase8_assets.evidence.config import CONFIG_NAME, ConfigError, load_config
from phase8_assets.evidence.governance import TRIVY_SECTIONS
from phase8_assets.shared.artifacts import ArtifactError, validate_artifact
from phase8_assets.shared.yaml_loader import YamlError, load_yaml_documents

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
    "DataInventory": "data_inventory",
    "RetentionPolicy": "retention_policies",
    "DeletionPolicy": "deletion_policies",
    "AccessPolicy": "access_policies",
    "Teams": "teams",
}

SNIFF_BYTES = 64 * 1024  # how much of a file (after gunzip) is looked at to tell its kind
_GO_BENCHMARK = re.compile(rb"^Benchmark\S*\s+\d+\s+[\d.]+ ns/op", re.M)
_BUNDLE_HINT = "phase8 reads it inside a plugin bundle: check the bundle with `phase8 plugin verify`"
_YAML_SUFFIXES = (".yaml", ".yml", ".snyk")


def _head(data: bytes) -> bytes:
    """The first ``SNIFF_BYTES`` of the content, gunzipped when the file is gzip (never all of it)."""
    if data[:2] != b"\x1f\x8b":
        return data[:SNIFF_BYTES]
    try:
        return zlib.decompressobj(wbits=31).decompress(data, SNIFF_BYTES)
    except zlib.error:
        return b""


def _artifact_kind(doc: dict) -> str | None:
    """The evidence kind of one of our own ``phase8/v1`` artifacts (its reader checks the version)."""
    if str(doc.get("apiVersion") or "phase8/").startswith("phase8/"):
        return ARTIFACT_KINDS.get(str(doc.get("kind")))
    return None


def _first_json(data: bytes) -> object:
    """The JSON document, or the first line of a JSON Lines file; None when neither parses."""
    text = data.decode("utf-8-sig", "replace")
    for candidate in (text, text.lstrip().split("\n", 1)[0]):
        try:
            return json.loads(candidate)
        except RecursionError:
            raise EvidenceError("(document)", "nested too deeply to read (a recursion limit was reached)") from None
        except ValueError:
            continue
    return None


def _json_kind(doc: object) -> str | None:
    """The kind of a JSON document, from the keys its tool writes; ``EvidenceError`` for a format
    that is known but is not evidence on its own."""
    if not isinstance(doc, dict):
        return None
    if "chaoslib-version" in doc or {"experiment", "status"} <= doc.keys() or "steady-state-hypothesis" in doc:
        return "drill_journals"
    if doc.get("status") in ("pass", "warn", "fail") and ({"checks", "details"} & doc.keys()):
        return "health_responses"
    if _artifact_kind(doc):
        return _artifact_kind(doc)
    if "resourceMetrics" in doc:
        return "otel_metrics"
    for key, what in (("resourceSpans", "traces"), ("resourceLogs", "logs")):
        if key in doc:
            raise EvidenceError(
                key, f"OTLP {what} are not evidence phase8 reads; otel_metrics takes OTLP metrics (resourceMetrics)"
            )
    if isinstance(doc.get("dataFiles"), list) and "executionId" in doc:
        return "cur_exports"
    if isinstance(doc.get("benchmarks"), list) or isinstance(doc.get("results"), list):
        return "benchmarks"  # pytest-benchmark, Google Benchmark; hyperfine
    if isinstance(doc.get("metrics"), dict) and {"root_group", "state", "options"} & doc.keys():
        return "benchmarks"  # k6 --summary-export / handleSummary
    for keys, what in (
        ({"app_id"}, "a Mattermost App manifest"),
        ({"display_information", "oauth_config"}, "a Slack app manifest"),
        ({"server", "webapp", "min_server_version", "settings_schema"}, "a Mattermost plugin manifest"),
    ):
        if keys & doc.keys() and (what != "a Mattermost plugin manifest" or "id" in doc):
            raise EvidenceError("(document)", f"{what}: {_BUNDLE_HINT}")
    if doc.get("kind") == "PluginManifest":
        raise EvidenceError("(document)", f"a phase8 plugin manifest (plugin.json): {_BUNDLE_HINT}")
    return None


def _yaml_kind(data: bytes, path: Path) -> str | None:
    if b"litmuschaos.io/" in data and b"ChaosResult" in data:
        return "chaos_results"
    try:
        docs = load_yaml_documents(data, str(path))
    except YamlError as exc:
        raise EvidenceError("(document)", str(exc).split(": ", 1)[-1]) from None
    doc = docs[0] if docs else None
    if not isinstance(doc, dict):
        return None
    if _artifact_kind(doc):
        return _artifact_kind(doc)
    api = str(doc.get("apiVersion") or doc.get("version") or "")
    if api.startswith("openslo/") or api in ("prometheus/v1", "sloth.slok.dev/v1"):
        return "slo_definitions"  # Sloth's specs too: its reader says to write the OpenSLO form
    if doc.get("kind") == "DataContract":
        return "data_contracts"
    if "kyverno.io/" in api and doc.get("kind") == "PolicyException":
        return "foreign_exceptions"
    if any(key in doc for key in TRIVY_SECTIONS):
        return "foreign_exceptions"  # Trivy's .trivyignore.yaml
    if "ignore" in doc and (api.startswith("v1") or path.suffix == ".snyk"):
        return "foreign_exceptions"  # Snyk's .snyk
    return None


def _csv_kind(head: bytes) -> str | None:
    header = head.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf")
    if b"billedcost" in header.lower() and b"chargeperiodstart" in header.lower():  # in any case, as the reader
        return "cost_exports"  # FOCUS
    if b"line_item_" in header or b"lineItem/" in header:
        raise EvidenceError(
            "(document)",
            "an AWS CUR data file: phase8 reads a CUR 2.0 export through its manifest "
            "(cur_exports: metadata/BILLING_PERIOD=YYYY-MM/*-Manifest.json)",
        )
    return None


def guess_kind(path: Path, data: bytes) -> str | None:
    """The evidence kind of a file, from its name and what its first bytes hold; None when it
    cannot be told. ``EvidenceError`` for a format phase8 knows but does not read on its own (OTLP
    traces, a plugin manifest outside its bundle, a CUR data file), saying where it belongs."""
    name = path.name.lower()
    suffix = path.suffix.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return "plugin_bundles"
    if suffix == ".xml":
        return "isolation_results"
    if suffix == ".md":
        return "runbooks"
    if suffix == ".parquet" or data[:4] == b"PAR1":
        return "cost_exports"  # the one kind phase8 reads as Parquet
    if name.startswith(".trivyignore") and suffix not in _YAML_SUFFIXES:
        return "foreign_exceptions"  # Trivy's plain .trivyignore: one id a line
    if suffix in _YAML_SUFFIXES or name.startswith(".trivyignore"):
        return _yaml_kind(data, path)
    head = _head(data)
    if name.endswith((".csv", ".csv.gz")):
        return _csv_kind(head)
    text = head.lstrip().removeprefix(b"\xef\xbb\xbf")
    if text[:1] in (b"{", b"["):
        return _json_kind(_first_json(head if data[:2] == b"\x1f\x8b" else data))
    if _GO_BENCHMARK.search(head):
        return "benchmarks"  # `go test -bench` output
    if b"-----BEGIN PGP SIGNED MESSAGE-----" in head and b'"plugin"' in head:
        raise EvidenceError("(document)", f"a Grafana plugin MANIFEST.txt: {_BUNDLE_HINT}")
    return None


def _broken_json(data: bytes) -> str | None:
    """Why a file that starts as JSON (not gzip) is not JSON, when neither the whole of it nor its
    first line (JSON Lines) parses: ``line L, column C: not valid JSON (reason)``; else None."""
    text = data.decode("utf-8-sig", "replace")
    if data[:2] == b"\x1f\x8b" or text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        json.loads(text.lstrip().split("\n", 1)[0])
        return None
    except (ValueError, RecursionError):
        pass
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
    except (ValueError, RecursionError):
        return None
    return None


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
    try:
        kind = kind or guess_kind(path, data)
    except EvidenceError as exc:
        yield f"{path}: {exc.field}: {exc.reason}", False
        return
    if kind is None and path.suffix.lower() in (".yaml", ".yml") and b"phase8/v1" in data:
        try:  # one of our artifacts that is not evidence (a Waiver, ...): its schema
            docs = load_yaml_documents(data, str(path))
            for index, doc in enumerate(docs):
                where = f"{path}#{index}" if len(docs) > 1 else str(path)
                if isinstance(doc, dict) and doc.get("kind") == "Waiver":
                    try:  # as the gate reads it: its expiry and approval times too, not only the schema
                        waiver_from(doc, where)
                    except EvidenceError as exc:
                        yield f"{where}: {exc.field}: {exc.reason}", False
                        continue
                validate_artifact(doc, where)
                yield f"{where}: {doc['kind']}", True
        except (YamlError, ArtifactError) as exc:
            yield str(exc), False
        return
    if kind is None:
        broken = _broken_json(data)
        if broken:  # a tool killed while writing, a copy cut short: that is what is wrong, not the kind
            yield f"{path}: (document): {broken}, so its evidence kind cannot be told from it", False
            return
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
