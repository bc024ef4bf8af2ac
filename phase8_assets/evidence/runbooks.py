"""Operator runbooks: Markdown with YAML front matter (``title``, ``owner``, ``reviewed``; optional
``review_every``, an ISO 8601 duration, and ``serves``, the gates, drills and alerts it serves as
as the docs governance defines it: gate names, drill ids, alert names, policy ids). The owner is
``team:name`` or an email address, as everywhere else, and names somebody: a placeholder (``TBD``,
``team:TBD``, ``team:todo``, ``team:unknown``, ``@tbd``, ...; ``PLACEHOLDER_OWNERS``) is nobody. A
runbook has steps below its front matter (headings alone are none), and ``review_every`` is at
most ``MAX_REVIEW_EVERY`` (a year): a longer period would let a runbook never go stale.

The ``reviewed`` date is the evidence time: a runbook nobody has reviewed within its allowed age
is stale evidence like any other. The summary lists the body's heading anchors (as GitHub renders
them) and its links, so the ``supportability`` gate can check that every link resolves.
"""

from __future__ import annotations

import re

from phase8_assets.evidence import EvidenceError, ReadResult
from phase8_assets.shared.clock import TimeParseError, add_duration, parse_duration, parse_timestamp
from phase8_assets.shared.yaml_loader import YamlError, load_yaml

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
# Lines that start a block of their own (a quote, a list item, a table row, HTML, a thematic break):
# a ``---`` under them is not a setext heading.
_BLOCK_START = re.compile(r"^ {0,3}(?:>|[-+*][ \t]|\d{1,9}[.)][ \t]|\||<|(?:(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$)")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_UNDERSCORE_EMPHASIS = re.compile(r"(?<![^\W_])(_{1,3})(?![\s_])(.+?)(?<![\s_])\1(?![^\W_])")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A reference definition (``[esc]: escalation.md#on-call "title"``) and an HTML anchor's href.
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?", re.M)
_HREF = re.compile(r"<a\s[^>]*?\bhref\s*=\s*[\"']([^\"']+)[\"']", re.I)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
SERVES = re.compile(r"^[A-Za-z0-9_.:/-]+$")
# Names that stand for nobody, with or without ``team:`` / ``@`` in front (case does not matter).
PLACEHOLDER_OWNERS = ("tbd", "tba", "todo", "unknown", "none", "null", "nobody", "unassigned", "n/a", "na",
                      "owner", "changeme", "fixme", "xxx", "?")  # fmt: skip
# team:name or an email address, as everywhere else (EvidenceConfig.json), and not a placeholder.
OWNER = re.compile(
    r"^(?!(?:team:|@)?(?:" + "|".join(re.escape(p) for p in PLACEHOLDER_OWNERS) + r")$)"
    r"(team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$",
    re.IGNORECASE,
)


def is_placeholder_owner(owner: str) -> bool:
    """Whether ``owner`` (``team:TBD``, ``team:unknown``, ``@todo``, ...) stands for nobody."""
    bare = owner.strip().casefold().removeprefix("team:").removeprefix("@")
    return bare in PLACEHOLDER_OWNERS


MAX_REVIEW_EVERY = "P1Y"  # docs/ops/drill-evidence.md: a runbook is reviewed at least once a year
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def _inline_text(markdown: str) -> str:
    """A heading's text as GitHub renders it (outside code spans): links and images by their text,
    HTML tags dropped, ``_`` emphasis delimiters dropped (an underscore inside a word, as in a gate's
    name ``drill_evidence``, is text, never emphasis)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"<[^>]+>", "", text)
    while True:
        plain = _UNDERSCORE_EMPHASIS.sub(r"\2", text)
        if plain == text:
            return text
        text = plain


def _heading_text(heading: str) -> str:
    out, last = [], 0
    for span in _CODE_SPAN.finditer(heading):  # a code span's text is kept as written
        code = span.group(2)
        out += [_inline_text(heading[last : span.start()]), code[1:-1] if code[:1] == code[-1:] == " " else code]
        last = span.end()
    return "".join([*out, _inline_text(heading[last:])])


def _headings(body: str) -> list[str]:
    """The text of the body's ATX (``## Roll back``) and setext (``Roll back`` over ``---``) headings."""
    out: list[str] = []
    paragraph: list[str] = []
    for line in _FENCE.sub("", body).splitlines():
        atx = _ATX.match(line)
        if atx:
            out.append(atx.group(1) or "")
            paragraph = []
        elif paragraph and _SETEXT.match(line):
            out.append("\n".join(paragraph))  # GitHub drops the line break: no "-"
            paragraph = []
        elif not line.strip() or _BLOCK_START.match(line) or (not paragraph and line.startswith("    ")):
            paragraph = []
        else:
            paragraph.append(line.strip())
    return out


def anchors(body: str) -> list[str]:
    """The anchors of the body's headings as GitHub renders them (``## Roll back`` -> ``roll-back``,
    ``## drill_evidence fails`` -> ``drill_evidence-fails``; a repeated heading gets ``-1``, ``-2``,
    skipping a suffix another heading already took, as github-slugger does)."""
    taken: dict[str, int] = {}
    out = []
    for heading in _headings(body):
        base = re.sub(r"[^\w\- ]", "", _heading_text(heading).strip().lower()).replace(" ", "-")
        if not base:
            continue
        slug = base
        while slug in taken:
            taken[base] += 1
            slug = f"{base}-{taken[base]}"
        taken[slug] = 0
        out.append(slug)
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
    if not OWNER.match(str(meta["owner"])):
        raise EvidenceError(
            "front matter.owner",
            f"expected team:name or an email address of somebody (not a placeholder such as TBD), got {meta['owner']!r}",
        )
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
        # Counted on the calendar from the runbook's own review date, as its due date is.
        if add_duration(reviewed.at, str(review_every)) > add_duration(reviewed.at, MAX_REVIEW_EVERY):
            raise EvidenceError(
                "front matter.review_every",
                f"{review_every} is longer than the maximum {MAX_REVIEW_EVERY}: a runbook is reviewed at least yearly",
            )
    serves = meta.get("serves")
    if serves is not None and (
        not isinstance(serves, list) or not all(isinstance(s, str) and SERVES.match(s) for s in serves)
    ):
        raise EvidenceError(
            "front matter.serves", f"expected a list of the gates, drills and alerts it serves, by name, got {serves!r}"
        )
    markdown = text[match.end() :]
    if not any(line.strip() and not _ATX.match(line) for line in _COMMENT.sub("", markdown).splitlines()):
        raise EvidenceError("body", "empty: a runbook needs its steps below the front matter (headings alone are none)")
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
