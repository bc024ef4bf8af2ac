"""Operator runbooks: Markdown with YAML front matter (``title``, ``owner``, ``reviewed``).

The ``reviewed`` date is the evidence time: a runbook nobody has reviewed within its allowed age
is stale evidence like any other.
"""

from __future__ import annotations

import re

from phase8_assets.evidence import EvidenceError, ReadResult
from phase8_assets.shared.clock import TimeParseError, parse_timestamp
from phase8_assets.shared.yaml_loader import YamlError, load_yaml

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


def read(data: bytes, uri: str) -> ReadResult:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvidenceError("(document)", f"not UTF-8 text ({exc.reason})") from exc
    match = _FRONT_MATTER.match(text)
    if not match:
        raise EvidenceError("front matter", "expected a YAML front matter block between '---' lines at the top")
    try:
        meta = load_yaml(match.group(1), f"{uri} front matter")
    except YamlError as exc:
        raise EvidenceError("front matter", str(exc).split(": ", 1)[-1]) from exc
    if not isinstance(meta, dict):
        raise EvidenceError("front matter", "expected a mapping")
    for key in ("title", "owner", "reviewed"):
        if not meta.get(key):
            raise EvidenceError(f"front matter.{key}", "is required")
    try:
        reviewed = parse_timestamp(meta["reviewed"], "reviewed")
    except TimeParseError as exc:
        raise EvidenceError("front matter.reviewed", f"expected a date (YYYY-MM-DD), got {meta['reviewed']!r}") from exc
    body = text[match.end() :]
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", body, re.M)
    return ReadResult(
        observed_at=reviewed.at,
        timestamp_field="front matter.reviewed",
        summary={"title": str(meta["title"]), "owner": str(meta["owner"]), "headings": len(headings)},
    )
