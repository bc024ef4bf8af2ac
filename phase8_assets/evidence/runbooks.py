"""Operator runbooks: Markdown with YAML front matter (``title``, ``owner``, ``reviewed``; optional
``review_every``, an ISO 8601 duration, and ``serves``, the gates, drills and alerts it serves as
as the docs governance defines it: gate names, drill ids, alert names, policy ids).

The ``reviewed`` date is the evidence time: a runbook nobody has reviewed within its allowed age
is stale evidence like any other. The summary lists the body's heading anchors (as GitHub renders
them) and its links, so the ``supportability`` gate can check that every link resolves.
"""

from __future__ import annotations

import re

from phase8_assets.evidence import EvidenceError, ReadResult
from phase8_assets.shared.clock import TimeParseError, parse_duration, parse_timestamp
from phase8_assets.shared.yaml_loader import YamlError, load_yaml

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A reference definition (``[esc]: escalation.md#on-call "title"``) and an HTML anchor's href.
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?", re.M)
_HREF = re.compile(r"<a\s[^>]*?\bhref\s*=\s*[\"']([^\"']+)[\"']", re.I)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
SERVES = re.compile(r"^[A-Za-z0-9_.:/-]+$")


def anchors(body: str) -> list[str]:
    """The anchors of the body's headings as GitHub renders them (``## Roll back`` -> ``roll-back``;
    a repeated heading gets ``-1``, ``-2``)."""
    seen: dict[str, int] = {}
    out = []
    for heading in _HEADING.findall(_FENCE.sub("", body)):
        text = re.sub(r"`|\*|_(?=\w)|(?<=\w)_|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
        base = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.append(base if count == 0 else f"{base}-{count}")
    return out


def body(text: str) -> str:
    """The Markdown after the front matter (all of it when there is none)."""
    match = _FRONT_MATTER.match(text)
    return text[match.end() :] if match else text


def links(body: str) -> list[str]:
    """Every link target of the body outside code blocks: inline Markdown links, then reference
    definitions, then HTML anchors' ``href``."""
    text = _FENCE.sub("", body)
    return [*_LINK.findall(text), *_REFERENCE.findall(text), *_HREF.findall(text)]


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
    review_every = meta.get("review_every")
    if review_every is not None:
        try:
            parse_duration(str(review_every), "review_every")
        except TimeParseError as exc:
            raise EvidenceError(
                "front matter.review_every", f"expected an ISO 8601 duration such as P90D, got {review_every!r}"
            ) from exc
    serves = meta.get("serves")
    if serves is not None and (
        not isinstance(serves, list) or not all(isinstance(s, str) and SERVES.match(s) for s in serves)
    ):
        raise EvidenceError(
            "front matter.serves", f"expected a list of the gates, drills and alerts it serves, by name, got {serves!r}"
        )
    markdown = text[match.end() :]
    found = anchors(markdown)
    return ReadResult(
        observed_at=reviewed.at,
        timestamp_field="front matter.reviewed",
        summary={
            "title": str(meta["title"]),
            "owner": str(meta["owner"]),
            "reviewed": str(meta["reviewed"]),
            "review_every": str(review_every) if review_every is not None else None,
            "serves": serves,
            "headings": len(found),
            "anchors": found,
            "links": links(markdown),
        },
    )
