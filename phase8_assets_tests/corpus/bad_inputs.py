"""A bad-input corpus for every evidence reader: mutations of real files, each with a name.

``seeds()`` gives, per evidence kind, files it reads today: the demo root's (always there) and the
public samples under ``../shared/real-samples`` (when present). ``mutations(seed)`` turns one file
into hostile variants (truncated, emptied, re-encoded, not UTF-8, NaN/Infinity, huge numbers,
duplicate and missing keys, wrong types, deep nesting, YAML aliases, oversized lines; for archives
members that leave the bundle and a gzip bomb). ``outcome(kind, data)`` runs the one way into a
reader, ``read_evidence``, and names what happened: ``read``, ``rejected`` (a named rejection) or
``crashed`` (a reader bug that ``read_evidence`` turned into a rejection: a finding of this corpus).
Anything else escapes, which is also a finding. ``scripts/bad_input_report.py`` prints the table.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from phase8_assets.evidence import STREAMED_KINDS, EvidenceError, read_evidence

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
REAL_SAMPLES = REPO.parent / "shared" / "real-samples"

# Public samples per kind (globs under real-samples/), for the kinds that have some.
REAL_SAMPLE_GLOBS = {
    "drill_journals": ["chaos/ctk_journal_*.json"],
    "otel_metrics": ["otel/otlp_metrics.json"],
    "data_contracts": ["policy/odcs_*.yaml"],
    "foreign_exceptions": ["policy/trivyignore_*.yaml", "policy/kyverno_*.yaml", "policy/*.snyk"],
    "cost_exports": ["finops/focus_*.csv"],
    "health_responses": ["health/*.json"],
    "benchmarks": ["benchmarks/*"],
    "isolation_results": ["junit/*.xml"],
    "slo_definitions": ["slo/openslo_*.yaml", "slo/sloth_*.y*ml"],
}

CASE_LIMIT_S = 10.0  # no case may take longer: a reader that hangs is a finding

DEEP = b'{"a":' * 5000 + b"1" + b"}" * 5000
BILLION_LAUGHS = b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n".encode()
    for i in range(8)
)
NUMBER = re.compile(rb"(?<=[:\s\[,=])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?=[\s,\]}\n])")


@dataclass(frozen=True)
class Seed:
    kind: str
    name: str  # a path relative to its folder, for reports
    data: bytes


@dataclass(frozen=True)
class Case:
    kind: str
    seed: str
    mutation: str
    data: bytes

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.seed}:{self.mutation}"


# Kinds the demo root does not configure: a file in their documented shape (an AWS Data Exports
# manifest, whose reader takes the billing period from the path).
CUR_MANIFEST = Seed(
    "cur_exports",
    "metadata/BILLING_PERIOD=2026-11/chatterbox-cur2-Manifest.json",
    json.dumps({
        "executionId": "5f9c3c9e-0d1a-4f8e-9c57-1d2b3c4d5e6f",
        "dataFiles": ["s3://billing/cur2/data/BILLING_PERIOD=2026-11/chatterbox-cur2-00001.snappy.parquet"],
        "columns": [{"name": name, "type": "string"} for name in (
            "bill_billing_period_start_date", "bill_payer_account_id", "line_item_usage_account_id",
            "line_item_usage_start_date", "line_item_line_item_type", "line_item_unblended_cost",
            "line_item_product_code", "line_item_currency_code")],
    }).encode(),
)  # fmt: skip


def demo_seeds(per_kind: int | None = 2) -> dict[str, list[Seed]]:
    """The demo root's files of each configured kind (the first ``per_kind`` by path; all with ``None``),
    and a documented-shape file for a kind the demo does not configure."""
    from phase8_assets.defs.resources import load_evidence_config

    config = load_evidence_config([str(DATA)])
    found: dict[str, list[Seed]] = {}
    for kind in config.evidence.values():
        refs = sorted({ref.rel for loc in kind.sources for ref in loc.base.glob(loc.path)})
        found[kind.name] = [Seed(kind.name, rel, (DATA / rel).read_bytes()) for rel in refs[:per_kind]]
    found.setdefault(CUR_MANIFEST.kind, [CUR_MANIFEST])
    return found


def real_seeds() -> dict[str, list[Seed]]:
    """The public samples of each kind that has some; empty when real-samples is absent."""
    if not REAL_SAMPLES.is_dir():
        return {}
    return {
        kind: [
            Seed(kind, path.relative_to(REAL_SAMPLES).as_posix(), path.read_bytes())
            for pattern in patterns
            for path in sorted(REAL_SAMPLES.glob(pattern))
            if path.is_file()
        ]
        for kind, patterns in REAL_SAMPLE_GLOBS.items()
    }


def _structured(data: bytes) -> tuple[object, str] | None:
    """The document and its syntax (json, jsonl, yaml) when ``data`` parses as one mapping."""
    text = data.decode("utf-8", "replace")
    try:
        return json.loads(text), "json"
    except ValueError:
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        try:
            return [json.loads(line) for line in lines], "jsonl"
        except ValueError:
            pass
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return (doc, "yaml") if isinstance(doc, dict) else None


def _dump(doc: object, syntax: str) -> bytes:
    if syntax == "json":
        return json.dumps(doc).encode()
    if syntax == "jsonl":
        return "\n".join(json.dumps(line) for line in doc).encode() + b"\n"
    return yaml.safe_dump(doc, sort_keys=False).encode()


def _other_type(value: object) -> object:
    if isinstance(value, bool) or value is None:
        return "not-a-boolean"
    if isinstance(value, (int, float)):
        return "not-a-number"
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return {"not": "a list"}
    return ["not", "a", "mapping"]


def _key_mutations(doc: object, syntax: str, per_level: int = 6) -> Iterator[tuple[str, bytes]]:
    """Each key of the top mapping and of its first nested mapping: removed, or of another type."""
    top = doc[0] if syntax == "jsonl" else doc
    if not isinstance(top, dict):
        return
    targets = [([], top)]
    nested = next((v for v in top.values() if isinstance(v, dict)), None)
    if nested is None:
        first_list = next((v for v in top.values() if isinstance(v, list) and v and isinstance(v[0], dict)), None)
        nested = first_list[0] if first_list else None
    if nested is not None:
        targets.append((["nested"], nested))
    for where, mapping in targets:
        for key in list(mapping)[:per_level]:
            label = ".".join([*where, str(key)])
            original = mapping[key]
            del mapping[key]
            yield f"missing-key:{label}", _dump(doc, syntax)
            mapping[key] = _other_type(original)
            yield f"wrong-type:{label}", _dump(doc, syntax)
            mapping[key] = original


def _text_mutations(data: bytes) -> Iterator[tuple[str, bytes]]:
    n = len(data)
    yield "truncated-half", data[: n // 2]
    yield "truncated-last-byte", data[:-1]
    yield "empty", b""
    yield "whitespace-only", b" \n\t\n"
    yield "bom-utf8", b"\xef\xbb\xbf" + data
    yield "utf16", data.decode("utf-8", "replace").encode("utf-16")
    yield "not-utf8", data[: n // 2] + b"\xff\xfe\xc0\xaf" + data[n // 2 :]
    yield "nul-bytes", data.replace(b"\n", b"\n\x00", 3)
    # "overlong-integer": more digits than Python converts to an int (4300 by default)
    for name, number in (("nan", b"NaN"), ("infinity", b"Infinity"), ("minus-infinity", b"-Infinity"),
                         ("huge-number", b"9" * 400), ("huge-exponent", b"1e999999"), ("negative", b"-1"),
                         ("overlong-integer", b"9" * 5000)):  # fmt: skip
        mutated = NUMBER.sub(number, data, count=5)
        if mutated != data:
            yield name, mutated
    first_key = re.search(rb'"([^"\n]{1,40})"\s*:\s*', data) or re.search(rb"^([A-Za-z_][\w-]{0,40}):[ \t]", data, re.M)
    if first_key:
        line_start = data.rfind(b"\n", 0, first_key.start()) + 1
        if data[line_start : first_key.start()].strip() in (b"", b"{"):
            if first_key.group(0).startswith(b'"'):
                dup = first_key.group(0) + b'"duplicate", '
            else:
                dup = first_key.group(1) + b": duplicate\n" + data[line_start : first_key.start()]
            yield "duplicate-key", data[: first_key.start()] + dup + data[first_key.start() :]
    yield "long-line", data + b"x" * (1 << 17)
    structured = _structured(data)
    if structured is not None:
        yield from _key_mutations(*structured)


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, body in members:
            tar.addfile(info, io.BytesIO(body) if body else None)
    return out.getvalue()


def _member(name: str, body: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname = (len(body) if kind == tarfile.REGTYPE else 0), kind, link
    return info, body if kind == tarfile.REGTYPE else b""


def _archive_mutations(data: bytes) -> Iterator[tuple[str, bytes]]:
    """A real bundle with one hostile member added, and a gzip bomb."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]
    for name, extra in (
        ("member-traversal", _member("../../etc/passwd")),
        ("member-absolute", _member("/etc/passwd")),
        ("member-symlink-out", _member("link", kind=tarfile.SYMTYPE, link="../../../etc/passwd")),
        ("member-hardlink", _member("hard", kind=tarfile.LNKTYPE, link="/etc/passwd")),
        ("member-device", _member("dev", kind=tarfile.CHRTYPE)),
        ("member-duplicate", members[-1] if members else _member("a")),
    ):
        yield name, _tar_gz([*members, extra])
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    info = tarfile.TarInfo("zeros.bin")
    info.size = 160 << 20
    bomb = deflate.compress(info.tobuf()) + b"".join(deflate.compress(b"\0" * (1 << 20)) for _ in range(160))
    yield "gzip-bomb", bomb + deflate.flush()


def mutations(seed: Seed) -> Iterator[tuple[str, bytes]]:
    """Named hostile variants of one file (gzip files mutated inside and as a stream)."""
    data = seed.data
    if data[:2] == b"\x1f\x8b":
        yield "gzip-truncated", data[: len(data) // 2]
        yield "gzip-trailing-garbage", data + b"\x00garbage"
        yield "not-gzip", b"not gzip at all\n"
        if seed.name.endswith(".tar.gz"):
            yield from _archive_mutations(data)
            return
        inner = gzip.decompress(data)
        for name, mutated in _text_mutations(inner):
            yield f"inside:{name}", gzip.compress(mutated, mtime=0)
        return
    yield from _text_mutations(data)


def cases(seeds: dict[str, list[Seed]]) -> Iterator[Case]:
    """Every mutation of every seed, plus the documents no file of any kind may crash a reader with."""
    for kind, kind_seeds in sorted(seeds.items()):
        for seed in kind_seeds:
            for name, data in mutations(seed):
                yield Case(kind, seed.name, name, data)
        yield Case(kind, "-", "deep-nesting", DEEP)
        yield Case(kind, "-", "yaml-aliases", BILLION_LAUGHS)
        yield Case(kind, "-", "binary-noise", bytes(range(256)) * 64)


def outcome(kind: str, data: bytes, uri: str = "case") -> tuple[str, str, float]:
    """(``read`` | ``rejected`` | ``crashed``, the rejection's field and reason, seconds) of one file.

    Bulk kinds get a local file, as the collector hands them; any other exception escapes."""
    started = time.monotonic()
    try:
        if kind in STREAMED_KINDS:
            with tempfile.TemporaryDirectory(prefix="phase8-corpus-") as tmp:
                path = Path(tmp) / "evidence"
                path.write_bytes(data)
                read_evidence(kind, path, uri)
        else:
            read_evidence(kind, data, uri)
    except EvidenceError as exc:
        verdict = "crashed" if exc.field == "(reader)" else "rejected"
        return verdict, f"{exc.field}: {exc.reason}", time.monotonic() - started
    return "read", "", time.monotonic() - started
