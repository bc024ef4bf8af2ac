"""Governance evidence: retention, deletion and access policies, teams, the data inventory (our
own ``phase8/v1`` kinds), ODCS v3 data contracts' retention entries, and other tools' exception
files (Trivy ``.trivyignore.yaml``, Snyk ``.snyk``, Kyverno ``PolicyException`` resources) read so
that their rot can be reported.

Timestamps that decide a verdict (inventory time, oldest record, deletion requests) must carry a
time zone: a date or a naive time is a rejection naming the field, never a guess.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from phase8_assets.evidence import EvidenceError, ReadResult, artifact_time, load_artifact, mapping, sequence
from phase8_assets.shared.clock import TimeParseError, parse_duration, parse_timestamp
from phase8_assets.shared.yaml_loader import YamlError, load_yaml, load_yaml_documents

POLICY_KINDS = {
    "retention_policies": "RetentionPolicy",
    "deletion_policies": "DeletionPolicy",
    "access_policies": "AccessPolicy",
    "teams": "Teams",
}
_ODCS_VERSION = re.compile(r"^v3\.\d+\.\d+$")
_ODCS_UNITS = {"d": "D", "day": "D", "days": "D", "w": "W", "week": "W", "weeks": "W", "m": "M", "month": "M",
               "months": "M", "y": "Y", "yr": "Y", "year": "Y", "years": "Y"}  # fmt: skip
# Keys people write meaning "expires" that the tool does not read: the exception never expires.
_EXPIRY_LOOKALIKES = ("expires", "expires_at", "expired_at", "expiry", "expiration", "expire", "until", "valid_until")
TRIVY_SECTIONS = ("vulnerabilities", "misconfigurations", "secrets", "licenses")
# Kyverno has no expiry field; its cleanup controller deletes any resource carrying this label, at
# a date (``2026-01-31``, ``2026-01-31T153000Z``: a label value has no colons) or a duration after it
# first sees the label (``4h``, ``1d``). Any other value is only a warning in Kyverno's log.
KYVERNO_TTL = "cleanup.kyverno.io/ttl"
_KYVERNO_RELATIVE = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d))+$")


def zoned_time(value: object, where: str) -> datetime:
    """An RFC 3339 timestamp with a time zone; a date or a naive time is refused, naming ``where``."""
    if not isinstance(value, str) or "T" not in value.upper():
        raise EvidenceError(where, f"expected an RFC 3339 timestamp with a time zone, got {value!r}")
    try:
        instant = parse_timestamp(value, where)
    except TimeParseError as exc:
        raise EvidenceError(where, f"expected an RFC 3339 timestamp with a time zone, got {value!r}") from exc
    if instant.was_naive:
        raise EvidenceError(where, f"the timestamp {value!r} has no time zone; write it with Z or an offset")
    return instant.at


def _durations(items: list[dict], keys: tuple[str, ...], prefix: str) -> None:
    for i, item in enumerate(items):
        for key in keys:
            if key in item:
                try:
                    parse_duration(item[key], f"{prefix}[{i}].{key}")
                except TimeParseError as exc:
                    raise EvidenceError(f"{prefix}[{i}].{key}", str(exc).split(": ", 1)[-1]) from exc


def _documents(data: bytes, uri: str, kind: str) -> list[dict]:
    """Every ``kind`` document of a (possibly multi-document) file, schema-checked."""
    from phase8_assets.shared.artifacts import ArtifactError, validate_artifact

    try:
        docs = load_yaml_documents(data, uri)
    except YamlError as exc:
        raise EvidenceError("(document)", str(exc).split(": ", 1)[-1]) from exc
    out = []
    for index, doc in enumerate(docs):
        try:
            out.append(validate_artifact(doc, uri, kind))
        except ArtifactError as exc:
            prefix = f"document {index + 1}: " if len(docs) > 1 else ""
            raise EvidenceError(exc.field, prefix + exc.reason) from exc
    if not out:
        raise EvidenceError("(document)", f"expected at least one {kind} document, got an empty file")
    return out


def _policy(kind: str):
    def read(data: bytes, uri: str) -> ReadResult:
        docs = _documents(data, uri, kind)
        for doc in docs:
            if kind == "RetentionPolicy":
                _durations(doc["rules"], ("max", "min"), "rules")
            elif kind == "DeletionPolicy":
                _durations(doc["slas"], ("within",), "slas")
            elif kind == "AccessPolicy":
                _check_cedar(doc["cedar"])
        newest = max((artifact_time(doc, "reviewed") for doc in docs), key=lambda i: i.at)
        summary = {"documents": len(docs), "ids": [doc.get("id", "teams") for doc in docs]}
        return ReadResult(newest.at, "reviewed", summary, docs)

    return read


def _check_cedar(text: str) -> None:
    import cedarpy

    try:
        cedarpy.PolicySet.from_str(text)
    except ValueError as exc:
        raise EvidenceError("cedar", f"the Cedar policies do not parse: {exc}") from exc


read_retention = _policy("RetentionPolicy")
read_deletion = _policy("DeletionPolicy")
read_access = _policy("AccessPolicy")
read_teams = _policy("Teams")


def read_inventory(data: bytes, uri: str) -> ReadResult:
    """The ``DataInventory``: datasets, their oldest record and deletion runs. It must list something,
    and its times must be possible: nothing after the inventory was generated, no deletion
    completed before it was requested (a negative age or duration is not evidence of compliance)."""
    doc = load_artifact(data, uri, "DataInventory")
    generated = zoned_time(doc["generated_at"], "generated_at")
    if not doc["datasets"]:
        raise EvidenceError("datasets", "expected at least one dataset: an inventory that lists nothing proves nothing")
    ids = set()

    def not_after_generated(at: datetime, where: str) -> datetime:
        if at > generated:
            raise EvidenceError(where, f"{at.isoformat()} is after generated_at {generated.isoformat()}")
        return at

    for i, ds in enumerate(doc["datasets"]):
        where = f"datasets[{i}]"
        if ds["id"] in ids:
            raise EvidenceError(f"{where}.id", f"{ds['id']!r} is listed twice")
        ids.add(ds["id"])
        oldest = ds["oldest_record"]
        if oldest is not None and not (isinstance(oldest, str) and oldest):  # only null is an empty dataset
            raise EvidenceError(
                f"{where}.oldest_record", f"expected a timestamp with a time zone, or null, got {oldest!r}"
            )
        if oldest is not None:
            ds["oldest_record"] = not_after_generated(
                zoned_time(oldest, f"{where}.oldest_record"), f"{where}.oldest_record"
            )
        if "retention" in ds:
            try:
                parse_duration(ds["retention"], f"{where}.retention")
            except TimeParseError as exc:
                raise EvidenceError(f"{where}.retention", str(exc).split(": ", 1)[-1]) from exc
        for j, run in enumerate(ds.get("deletion_runs") or []):
            at = f"{where}.deletion_runs[{j}]"
            run["requested_at"] = not_after_generated(
                zoned_time(run["requested_at"], f"{at}.requested_at"), f"{at}.requested_at"
            )
            if run.get("completed_at"):
                run["completed_at"] = not_after_generated(
                    zoned_time(run["completed_at"], f"{at}.completed_at"), f"{at}.completed_at"
                )
                if run["completed_at"] < run["requested_at"]:
                    raise EvidenceError(f"{at}.completed_at", f"{run['completed_at'].isoformat()} is before requested_at "
                                        f"{run['requested_at'].isoformat()}")  # fmt: skip
    tenants = sorted({ds["tenant"] for ds in doc["datasets"]})
    return ReadResult(generated, "generated_at", {"datasets": len(doc["datasets"]), "tenants": tenants}, [doc])


def read_data_contract(data: bytes, uri: str) -> ReadResult:
    """An ODCS v3 data contract: its ``retention`` SLA properties become retention rules."""
    try:
        doc = load_yaml(data, uri)
    except YamlError as exc:
        raise EvidenceError("(document)", str(exc).split(": ", 1)[-1]) from exc
    if not isinstance(doc, dict) or doc.get("kind") != "DataContract":
        raise EvidenceError(
            "kind", f"expected DataContract (ODCS v3), got {doc.get('kind') if isinstance(doc, dict) else doc!r}"
        )
    if not _ODCS_VERSION.match(str(doc.get("apiVersion", ""))):
        raise EvidenceError("apiVersion", f"expected an ODCS v3 version such as v3.1.0, got {doc.get('apiVersion')!r}")
    contract = str(doc.get("id") or doc.get("name") or "")
    if not contract:
        raise EvidenceError("id", "an ODCS contract needs an id (or a name) for datasets to refer to it")
    rules = []
    for i, prop in enumerate(doc.get("slaProperties") or []):
        if not isinstance(prop, dict) or prop.get("property") != "retention":
            continue
        value, unit = prop.get("value"), str(prop.get("unit", "")).strip().lower()
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise EvidenceError(f"slaProperties[{i}].value", f"expected a positive whole number, got {value!r}")
        if unit not in _ODCS_UNITS:
            raise EvidenceError(f"slaProperties[{i}].unit", f"expected one of {'|'.join(_ODCS_UNITS)}, got {unit!r}")
        rules.append({"id": f"odcs.{contract}.retention", "contract": contract, "name": doc.get("name"),
                      "max": f"P{value}{_ODCS_UNITS[unit]}", "element": prop.get("element")})  # fmt: skip
    created = doc.get("contractCreatedTs")
    at = zoned_time(created, "contractCreatedTs") if created else None
    summary = {"contract": contract, "name": doc.get("name"), "retention_rules": len(rules)}
    return ReadResult(at, "contractCreatedTs" if at else "", summary, rules)


def read_foreign_exceptions(data: bytes, uri: str) -> ReadResult:
    """Trivy's ``.trivyignore.yaml``, Snyk's ``.snyk`` or Kyverno ``PolicyException`` resources (one
    or more YAML documents): one record per ignore entry or excepted policy, with the expiry the tool
    honours (Trivy ``expired_at``, Snyk ``expires``, Kyverno's ``cleanup.kyverno.io/ttl`` label) and
    any expiry-like key it ignores. Trivy's plain ``.trivyignore`` (one id a line, ``exp:YYYY-MM-DD``)
    too."""
    name = uri.rsplit("/", 1)[-1].lower()
    if name.startswith(".trivyignore") and not name.endswith((".yaml", ".yml")):
        return ReadResult(None, "", {"tool": "trivy"}, _trivy_text(data))
    try:
        docs = load_yaml_documents(data, uri)
    except YamlError as exc:
        raise EvidenceError("(document)", str(exc).split(": ", 1)[-1]) from exc
    if docs and all(isinstance(d, dict) and "kyverno.io/" in str(d.get("apiVersion", "")) for d in docs):
        records = [r for i, d in enumerate(docs) for r in _kyverno(d, f"document {i + 1}." if len(docs) > 1 else "")]
        return ReadResult(None, "", {"tool": "kyverno", "exceptions": len(docs)}, records)
    if len(docs) != 1:
        raise EvidenceError("(document)", f"expected one YAML document, found {len(docs)}")
    doc = docs[0]
    if not isinstance(doc, dict):
        raise EvidenceError(
            "(document)", "expected a Trivy .trivyignore.yaml, a Snyk .snyk or a Kyverno PolicyException mapping"
        )
    if "ignore" in doc or str(doc.get("version", "")).startswith("v1"):
        return ReadResult(None, "", {"tool": "snyk"}, _snyk(doc))
    if any(key in doc for key in TRIVY_SECTIONS):
        return ReadResult(None, "", {"tool": "trivy"}, _trivy(doc))
    raise EvidenceError(
        "(document)",
        f"expected a Trivy ({'|'.join(TRIVY_SECTIONS)}), Snyk (ignore) or Kyverno (apiVersion kyverno.io/…, "
        "kind PolicyException) file",
    )


def _expiry(entry: dict, honoured: str, where: str) -> tuple[str | None, list[str]]:
    value = entry.get(honoured)
    ignored = [k for k in _EXPIRY_LOOKALIKES if k != honoured and k in entry]
    if value is None:
        return None, ignored
    try:
        return parse_timestamp(value, f"{where}.{honoured}").at.isoformat(), ignored
    except TimeParseError as exc:
        raise EvidenceError(f"{where}.{honoured}", f"expected a date or timestamp, got {value!r}") from exc


def _trivy_text(data: bytes) -> list[dict]:
    """Trivy's plain ``.trivyignore``: ``#`` comments, one finding id a line, optionally followed by
    ``exp:YYYY-MM-DD`` (after which Trivy reports the finding again)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvidenceError("(document)", f"expected a UTF-8 text file: {exc.reason} at byte {exc.start}") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"line {number}"
        options = dict(f.split(":", 1) for f in fields[1:] if ":" in f)
        if len(options) != len(fields) - 1:
            raise EvidenceError(where, f"expected an id optionally followed by exp:YYYY-MM-DD, got {line.strip()!r}")
        expires, _ = _expiry(options, "exp", where)
        records.append({"tool": "trivy", "id": fields[0], "where": where, "expires": expires, "honoured_key": "exp:",
                        "ignored_keys": [], "reason": None})  # fmt: skip
    return records


def _trivy(doc: dict) -> list[dict]:
    records = []
    for section in TRIVY_SECTIONS:
        for i, entry in enumerate(doc.get(section) or []):
            where = f"{section}[{i}]"
            if not isinstance(entry, dict) or not entry.get("id"):
                raise EvidenceError(f"{where}.id", "expected an entry with an id")
            expires, ignored = _expiry(entry, "expired_at", where)
            records.append({"tool": "trivy", "id": str(entry["id"]), "where": where, "expires": expires,
                            "honoured_key": "expired_at", "ignored_keys": ignored,
                            "reason": entry.get("statement")})  # fmt: skip
    return records


def _kyverno_ttl(labels: dict, where: str) -> tuple[str | None, str | None, list[str]]:
    """(absolute expiry, relative TTL, ignored keys) of a resource's cleanup label."""
    value = labels.get(KYVERNO_TTL)
    if value is None:
        return None, None, []
    text = str(value)
    for layout in ("%Y-%m-%dT%H%M%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC).isoformat(), None, []
        except ValueError:
            pass
    if _KYVERNO_RELATIVE.match(text):
        return None, text, []
    return None, None, [f"{where}{KYVERNO_TTL}={text!r} (not a date or duration Kyverno reads)"]


def _kyverno(doc: dict, where: str) -> list[dict]:
    """A ``kyverno.io/v2*`` PolicyException (``spec.exceptions``: policy and rule names) or a
    ``policies.kyverno.io`` one (``spec.policyRefs``): one record per excepted policy."""
    if doc.get("kind") != "PolicyException":
        raise EvidenceError(f"{where}kind", f"expected PolicyException, got {doc.get('kind')!r}")
    metadata = mapping(doc.get("metadata"), f"{where}metadata")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise EvidenceError(f"{where}metadata.name", "is required")
    if metadata.get("namespace"):
        name = f"{metadata['namespace']}/{name}"
    labels = mapping(metadata.get("labels") or {}, f"{where}metadata.labels")
    annotations = mapping(metadata.get("annotations") or {}, f"{where}metadata.annotations")
    expires, ttl, ignored = _kyverno_ttl(labels, f"{where}metadata.labels.")
    ignored += [
        f"{where}metadata.{part}.{key}"
        for part, keys in (("labels", labels), ("annotations", annotations))
        for key in keys
        if key != KYVERNO_TTL and str(key).rsplit("/", 1)[-1].lower().replace("-", "_") in _EXPIRY_LOOKALIKES
    ]
    spec = mapping(doc.get("spec"), f"{where}spec")
    modern = str(doc["apiVersion"]).startswith("policies.kyverno.io/")
    field = "policyRefs" if modern else "exceptions"
    entries = sequence(spec.get(field), f"{where}spec.{field}")
    if not entries:
        raise EvidenceError(f"{where}spec.{field}", "expected at least one excepted policy")
    records = []
    for i, entry in enumerate(entries):
        at = f"{where}spec.{field}[{i}]"
        entry = mapping(entry, at)
        policy = entry.get("name" if modern else "policyName")
        if not isinstance(policy, str) or not policy:
            raise EvidenceError(f"{at}.{'name' if modern else 'policyName'}", "is required")
        rules = [] if modern else [str(r) for r in sequence(entry.get("ruleNames") or [], f"{at}.ruleNames")]
        records.append({"tool": "kyverno", "id": policy + (f" ({', '.join(rules)})" if rules else ""),
                        "where": f"PolicyException {name}: spec.{field}[{i}]", "expires": expires, "ttl": ttl,
                        "honoured_key": f"metadata.labels.{KYVERNO_TTL}", "ignored_keys": ignored,
                        "reason": annotations.get("policies.kyverno.io/description")})  # fmt: skip
    return records


def _snyk(doc: dict) -> list[dict]:
    records = []
    for vuln, rules in mapping(doc.get("ignore"), "ignore").items():
        for i, rule in enumerate(sequence(rules, f"ignore.{vuln}")):
            for path, entry in mapping(rule, f"ignore.{vuln}[{i}]").items():
                where = f"ignore.{vuln}[{i}].{path}"
                entry = entry if isinstance(entry, dict) else {}
                expires, ignored = _expiry(entry, "expires", where)
                records.append({"tool": "snyk", "id": str(vuln), "where": where, "expires": expires,
                                "honoured_key": "expires", "ignored_keys": ignored,
                                "reason": entry.get("reason")})  # fmt: skip
    return records
