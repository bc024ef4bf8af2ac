"""The one redaction function: secrets never reach the warehouse, a report or telemetry.

``redact`` walks any JSON-like value (and dataclasses, such as what a reader returns). Values
under secret-looking keys are replaced whole;
secret-looking substrings inside any other string (cloud keys, tokens, JWTs, private keys,
passwords in URLs and DSNs) are replaced in place, so the surrounding text stays readable.
"""

from __future__ import annotations

import dataclasses
import re
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"

# Keys whose values are secrets whatever they look like.
_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?s?(?![a-z])|secret|token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|"
    r"client[-_]?secret|credential|authorization|auth[-_]?header|cookie|session[-_]?id|dsn|"
    r"signing[-_]?key|x-api-key)",
    re.IGNORECASE,
)
# Keys that contain a secret-looking word but are not secrets.
_NOT_SECRET_KEY = re.compile(r"^(token_type|tokens?_(count|used|limit)|password_policy|secret_ref)$", re.I)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # PEM private keys (RSA, EC, OPENSSH, PKCS#8, encrypted).
    (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)",
            re.S,
        ),
        REDACTED,
    ),
    # user:password@ in URLs and DSNs: keep scheme, user and host.
    (
        re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?P<post>@)"),
        r"\g<pre>" + REDACTED + r"\g<post>",
    ),
    # Key=value pairs in DSNs, query strings, command lines and JSON or YAML quoted in text
    # (``db_password=…``, ``"api_key": "…"``).
    (
        re.compile(
            r"(?P<pre>(?<![A-Za-z0-9])(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?token|sig|"
            r"signature)['\"]?\s*[=:]\s*)(?P<q>['\"]?)[^\s&;'\",}]+",
            re.I,
        ),
        r"\g<pre>\g<q>" + REDACTED,
    ),
    # Secrets given as command-line options: ``--password hunter2``, ``--api-key=…``.
    (
        re.compile(
            r"(?P<pre>--(?:password|passwd|pass|token|secret|client[_-]?secret|api[_-]?key|access[_-]?key)"
            r"(?:=|\s+))(?P<q>['\"]?)[^\s'\",]+",
            re.I,
        ),
        r"\g<pre>\g<q>" + REDACTED,
    ),
    # Authorization headers.
    (re.compile(r"(?P<pre>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=-]{8,}", re.I), r"\g<pre>" + REDACTED),
    # JSON Web Tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), REDACTED),
    # AWS access key ids and secret keys written as assignments.
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b"), REDACTED),
    (re.compile(r"(?P<pre>aws_secret_access_key\s*[=:]\s*)[A-Za-z0-9/+=]{40}", re.I), r"\g<pre>" + REDACTED),
    # GitHub, GitLab, Slack, Stripe, Google, OpenAI-style tokens.
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b"), REDACTED),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"), REDACTED),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), REDACTED),
    (re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), REDACTED),
]


# Evidence repeats the same short strings (field names, units, tool and benchmark names, tenant ids)
# thousands of times per gate run: the redacted form of a short string, and the verdict on a key,
# are remembered (bounded caches). Longer strings, rarely repeated, are not kept alive.
_CACHED_LENGTH = 256


@lru_cache(maxsize=8192)
def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _NOT_SECRET_KEY.match(key)


def redact_text(text: str) -> str:
    """Replace every secret-looking substring of ``text``."""
    return _redact_short(text) if len(text) <= _CACHED_LENGTH else _redact_text(text)


def _redact_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_redact_short = lru_cache(maxsize=65536)(_redact_text)


_PLAIN = frozenset({int, float, bool, type(None)})


def redact(value: Any, *, secret_keys: tuple[str, ...] = ()) -> Any:
    """Return a copy of ``value`` with secrets replaced by ``[REDACTED]``.

    ``secret_keys`` names further keys (exactly, case-insensitive) whose whole value is secret,
    e.g. a journal's ``configuration`` block.
    """
    extra = {k.lower() for k in secret_keys}

    def walk(item: Any) -> Any:
        kind = type(item)
        if kind in _PLAIN:  # most leaves: nothing to redact, and no isinstance chain to walk
            return item
        if kind is str:
            return redact_text(item)
        if isinstance(item, dict):
            out = {}
            for key, val in item.items():
                name = str(key)
                if (is_secret_key(name) or name.lower() in extra) and val not in (None, "", [], {}):
                    out[key] = _redact_whole(val)
                else:
                    out[key] = walk(val)
            return out
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, tuple):
            return tuple(walk(v) for v in item)
        if isinstance(item, str):
            return redact_text(item)
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            fields = {f.name: getattr(item, f.name) for f in dataclasses.fields(item) if f.init}
            return dataclasses.replace(item, **{name: walk({name: v})[name] for name, v in fields.items()})
        return item

    return walk(value)


def _redact_whole(value: Any) -> Any:
    """Keep the shape of a secret's container (keys are not secret), drop every leaf value."""
    if isinstance(value, dict):
        return {k: _redact_whole(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_whole(v) for v in value]
    return REDACTED
