"""``phase8.yaml``: the evidence root's config (``kind: EvidenceConfig``).

Loading resolves ``extends`` chains (a child overrides only what it changes; every path resolves
relative to the file that declares it and stays inside that file's folder; ``extends`` itself may
only climb to another ``phase8.yaml``, see ``roots.locate``) and merges several
evidence roots (the first root's config rules; later roots contribute evidence kinds).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field, replace
from datetime import timedelta

from phase8_assets.evidence.roots import EvidenceRoot, RootError, check_relative, locate, open_root
from phase8_assets.shared.artifacts import ArtifactError, validate_artifact
from phase8_assets.shared.clock import TimeParseError, parse_duration, zoned_timestamp
from phase8_assets.shared.yaml_loader import YamlError, load_yaml

CONFIG_NAME = "phase8.yaml"
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
DEFAULT_READ_TIMEOUT_S = 60.0
DEFAULT_CLOCK_SKEW = "PT5M"
DEFAULT_OWNER = "team:platform-reliability"
MAX_EXTENDS_DEPTH = 8
# Parsed and validated config documents by (source, sha256 of their bytes): every step of a gate run
# loads the config, and parsing YAML and checking the schema costs far more than reading the bytes,
# which are still read each time, so a changed file is parsed anew. Bounded: cleared when full.
_PARSED: dict[tuple[str, bytes], dict] = {}
_PARSED_MAX = 64
DEFAULT_EXCEPTION_LIFETIME = "P90D"
DEFAULT_EXPIRING_WITHIN = "P14D"


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Located:
    """A path or glob together with the folder it is relative to."""

    base: EvidenceRoot
    path: str
    root: str = ""  # the evidence root (as given) whose config declared this path

    @property
    def uri(self) -> str:
        return self.base.uri_of(self.path)


@dataclass
class EvidenceKind:
    name: str
    sources: list[Located]
    max_age: timedelta
    max_age_text: str
    owner: str | None
    max_bytes: int


@dataclass(frozen=True)
class ExceptionSettings:
    """The exception workflow of a root (``exceptions:`` in phase8.yaml)."""

    max_lifetime: timedelta
    max_lifetime_text: str
    per_gate: dict[str, tuple[timedelta, str]]
    expiring_within: timedelta
    require_approval: bool = True
    reason: str = ""

    def lifetime_for(self, gate: str) -> tuple[timedelta, str]:
        return self.per_gate.get(gate, (self.max_lifetime, self.max_lifetime_text))


@dataclass
class EvidenceConfig:
    source: str
    roots: list[EvidenceRoot]
    release: dict
    evaluation_time: str | None
    tenants: list[str]
    owners: dict[str, str]
    runbooks: Located
    evidence: dict[str, EvidenceKind]
    gates: dict[str, dict]
    waivers: list[Located]
    max_file_bytes: int
    read_timeout_s: float
    exceptions: ExceptionSettings | None = None
    files: list[str] = field(default_factory=list)
    clock_skew: timedelta = timedelta(minutes=5)
    clock_skew_text: str = DEFAULT_CLOCK_SKEW
    links: dict[str, str] = field(default_factory=dict)  # base URLs: runbooks, evidence, reports
    program: dict | None = None  # ``program:`` as declared (items: owner, family, cadence); None when absent
    audit_retention: str | None = None  # audit.retention: what `phase8 audit prune` keeps by default

    @property
    def root_uris(self) -> list[str]:
        return [root.uri for root in self.roots]

    def paths_of(self, kind: str) -> str:
        """Where a kind's files are configured to be: the evidence of a finding about files that are absent
        (the config itself when it configures no such kind: that is where they are missing)."""
        spec = self.evidence.get(kind)
        return ", ".join(loc.uri for loc in spec.sources) if spec else self.source

    def owner_for(self, gate: str, kind: str | None = None) -> str:
        if kind and kind in self.evidence and self.evidence[kind].owner:
            return self.evidence[kind].owner
        gate_cfg = self.gates.get(gate, {})
        return gate_cfg.get("owner") or self.owners.get(gate) or self.owners.get("default") or DEFAULT_OWNER

    def gate_switch(self, gate: str) -> tuple[bool, str]:
        """(enabled, reason): gates are on unless the config switches them off with a reason."""
        gate_cfg = self.gates.get(gate, {})
        if gate_cfg.get("enabled", True):
            return True, ""
        return False, gate_cfg.get("reason") or "switched off in phase8.yaml without a reason"

    def runbook_for(self, gate: str) -> str:
        """Where the gate's runbook should be: the config's ``gates.<gate>.runbook`` or <runbooks>/<gate>.md."""
        explicit = self.gates.get(gate, {}).get("runbook")
        rel = explicit or f"{gate.replace('_', '-')}.md"
        return self.runbooks.base.uri_of(f"{self.runbooks.path}/{rel}".strip("/"))


def _read_doc(base: EvidenceRoot, name: str) -> dict:
    source = base.uri_of(name)
    try:
        if name == CONFIG_NAME and not base.exists(name):
            raise ConfigError(f"no {name} in {base.uri}: create one (see README § Pointing it at your own evidence)")
        data = base.read_bytes(name, 1024 * 1024)
    except (RootError, OSError) as exc:
        raise ConfigError(f"{source}: cannot read the evidence config: {exc}") from exc
    key = (source, hashlib.sha256(data).digest())
    if key not in _PARSED:
        try:
            doc = validate_artifact(load_yaml(data, source), source, "EvidenceConfig")
        except (YamlError, ArtifactError) as exc:
            raise ConfigError(str(exc)) from exc
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = doc
    return copy.deepcopy(_PARSED[key])


def _locate_fields(doc: dict, base: EvidenceRoot, source: str) -> dict:
    """Turn every path the document declares into a ``Located`` relative to its own folder."""
    doc = copy.deepcopy(doc)
    try:
        for name, kind in (doc.get("evidence") or {}).items():
            for key in ("paths", "extra_paths"):
                if key in kind:
                    kind[key] = [Located(base, check_relative(p, f"evidence.{name}.{key}")) for p in kind[key]]
        if "runbooks" in doc:
            doc["runbooks"] = Located(base, check_relative(doc["runbooks"], "runbooks"))
        for key in ("waivers", "extra_waivers"):
            if key in doc:
                doc[key] = [Located(base, check_relative(p, key)) for p in doc[key]]
    except RootError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return doc


def _merge(parent: dict, child: dict) -> dict:
    """Child overrides parent; mappings merge key by key, everything else is replaced."""
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _claim(merged: dict, root: EvidenceRoot) -> dict:
    """Mark every declared evidence path with the root whose config chain declared it."""
    for spec in (merged.get("evidence") or {}).values():
        spec["paths"] = [replace(loc, root=root.uri) for loc in spec.get("paths") or []]
    return merged


def _load_chain(root: EvidenceRoot) -> tuple[dict, list[str]]:
    base, name = root, CONFIG_NAME
    docs, seen = [], []
    while True:
        source = base.uri_of(name)
        if source in seen:
            raise ConfigError(f"{source}: extends: cycle ({' -> '.join([*seen, source])})")
        if len(seen) >= MAX_EXTENDS_DEPTH:
            raise ConfigError(f"{source}: extends: more than {MAX_EXTENDS_DEPTH} levels")
        seen.append(source)
        doc = _read_doc(base, name)
        docs.append(_locate_fields(doc, base, source))
        parent = doc.get("extends")
        if not parent:
            break
        try:
            base, name = locate(base, parent, CONFIG_NAME)
        except RootError as exc:
            raise ConfigError(f"{source}: extends: {exc}") from exc
    merged: dict = {}
    for doc in reversed(docs):
        for name, kind in (doc.get("evidence") or {}).items():
            extra = kind.pop("extra_paths", None)
            if extra:  # added to what the kind inherits, each path still relative to its own file
                inherited = kind.get("paths") or (merged.get("evidence") or {}).get(name, {}).get("paths") or []
                kind["paths"] = [*inherited, *extra]
        extra_waivers = doc.pop("extra_waivers", None)
        if extra_waivers:
            doc["waivers"] = [*(doc.get("waivers") or merged.get("waivers") or []), *extra_waivers]
        merged = _merge(merged, doc)
    merged.pop("extends", None)
    return _claim(merged, root), seen


def _require(merged: dict, source: str) -> None:
    for path in ("release.version", "release.commit"):
        head, tail = path.split(".")
        if not (merged.get(head) or {}).get(tail):
            raise ConfigError(f"{source}: {path}: is required (declare it here or in the config it extends)")
    if not merged.get("evidence"):
        raise ConfigError(f"{source}: evidence: at least one evidence kind is required")


def _kind(name: str, spec: dict, source: str, default_max_bytes: int, known_kinds: set[str] | None) -> EvidenceKind:
    if known_kinds is not None and name not in known_kinds:
        raise ConfigError(
            f"{source}: evidence.{name}: unknown evidence kind; expected one of {'|'.join(sorted(known_kinds))}"
        )
    if not spec.get("paths"):
        raise ConfigError(f"{source}: evidence.{name}.paths: is required (glob patterns relative to the root)")
    if not spec.get("max_age"):
        raise ConfigError(f"{source}: evidence.{name}.max_age: is required (an ISO 8601 duration such as P7D)")
    return EvidenceKind(
        name=name,
        sources=list(spec["paths"]),
        max_age=_duration(spec["max_age"], f"evidence.{name}.max_age", source),
        max_age_text=spec["max_age"],
        owner=spec.get("owner"),
        max_bytes=int(spec.get("max_bytes") or default_max_bytes),
    )


def _duration(text: str, field_name: str, source: str) -> timedelta:
    try:
        return parse_duration(text, field_name)
    except TimeParseError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _exception_settings(spec: dict, source: str) -> ExceptionSettings:
    lifetime = spec.get("max_lifetime") or DEFAULT_EXCEPTION_LIFETIME
    per_gate = {
        gate: (_duration(text, f"exceptions.per_gate.{gate}", source), text)
        for gate, text in (spec.get("per_gate") or {}).items()
    }
    return ExceptionSettings(
        max_lifetime=_duration(lifetime, "exceptions.max_lifetime", source),
        max_lifetime_text=lifetime,
        per_gate=per_gate,
        expiring_within=_duration(
            spec.get("expiring_within") or DEFAULT_EXPIRING_WITHIN, "exceptions.expiring_within", source
        ),
        require_approval=spec.get("require_approval", True),
        reason=spec.get("reason", ""),
    )


def load_config(locations: list[str], known_kinds: set[str] | None = None) -> EvidenceConfig:
    """Load the config of one or more evidence roots; the first root's config rules."""
    if not locations:
        raise ConfigError("no evidence root given (use --evidence PATH or s3://bucket/prefix)")
    roots: list[EvidenceRoot] = []
    for location in locations:
        try:
            root = open_root(location)
        except RootError as exc:
            raise ConfigError(str(exc)) from exc
        if root.uri not in [r.uri for r in roots]:
            roots.append(root)
    merged, files = _load_chain(roots[0])
    source = files[0]
    _require(merged, source)
    if merged.get("evaluation_time"):
        try:
            zoned_timestamp(merged["evaluation_time"], "evaluation_time")
        except TimeParseError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
    limits = merged.get("limits") or {}
    max_file_bytes = int(limits.get("max_file_bytes") or DEFAULT_MAX_FILE_BYTES)
    clock_skew_text = limits.get("clock_skew") or DEFAULT_CLOCK_SKEW
    clock_skew = _duration(clock_skew_text, "limits.clock_skew", source)
    kinds = {name: _kind(name, spec, source, max_file_bytes, known_kinds) for name, spec in merged["evidence"].items()}
    for extra in roots[1:]:
        other, other_files = _load_chain(extra)
        files.extend(other_files)
        for name, spec in (other.get("evidence") or {}).items():
            if name in kinds:
                kinds[name].sources.extend(spec.get("paths") or [])
            else:
                kinds[name] = _kind(name, spec, other_files[0], max_file_bytes, known_kinds)
    return EvidenceConfig(
        source=source,
        roots=roots,
        release=dict(merged["release"]),
        evaluation_time=merged.get("evaluation_time"),
        tenants=list(merged.get("tenants") or []),
        owners=dict(merged.get("owners") or {}),
        runbooks=merged.get("runbooks") or Located(roots[0], "docs/ops"),
        evidence=kinds,
        gates=dict(merged.get("gates") or {}),
        waivers=list(merged.get("waivers") or []),
        max_file_bytes=max_file_bytes,
        read_timeout_s=float(limits.get("read_timeout_seconds") or DEFAULT_READ_TIMEOUT_S),
        exceptions=_exception_settings(merged.get("exceptions") or {}, source),
        files=files,
        clock_skew=clock_skew,
        clock_skew_text=clock_skew_text,
        links=dict(merged.get("links") or {}),
        program=merged.get("program"),
        audit_retention=_audit_retention((merged.get("audit") or {}).get("retention"), source),
    )


def _audit_retention(text: str | None, source: str) -> str | None:
    if text is not None:
        _duration(text, "audit.retention", source)
    return text
