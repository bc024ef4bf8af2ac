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
    r"signing[-_]?key|x-api-key|webhook(?:[-_]?ur[il])?$|connection[-_]?string|otlp[-_](?:[a-z]+[-_])*headers|"
    r"x-honeycomb-team)",
    re.IGNORECASE,
)
# Keys that contain a secret-looking word but are not secrets.
_NOT_SECRET_KEY = re.compile(r"^(token_type|tokens?_(count|used|limit)|password_policy|secret_ref)$", re.I)

# Tokens recognised by their own shape, wherever they appear.
_TOKENS = (
    r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",  # JSON Web Tokens
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b",  # AWS access key ids
    r"gh[pousr]_[A-Za-z0-9]{30,}\b|github_pat_[A-Za-z0-9_]{40,}\b",  # GitHub
    r"gl(?:pat|dt|rt|ptt|ft|imt|oas|cbt|soat|ffct|agent)-[A-Za-z0-9_-]{20,}\b",  # GitLab
    r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b|glc_[A-Za-z0-9+/]{32,}={0,2}",  # Grafana
    r"xox[abposre]-[A-Za-z0-9-]{10,}\b|xapp-\d-[A-Za-z0-9-]{10,}\b",  # Slack
    r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b",  # Stripe
    r"AIza[0-9A-Za-z_-]{35}\b",  # Google
    # OpenAI/Anthropic-style: random, so with a digit and a capital (a slug such as an S3 key's
    # ``sk-ingest-pipeline-p99`` has no capital)
    r"sk-(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Z])[A-Za-z0-9_-]{20,}\b",
    r"npm_[A-Za-z0-9]{36}\b|pypi-AgE[A-Za-z0-9_-]{50,}|dckr_pat_[A-Za-z0-9_-]{20,}",  # npm, PyPI, Docker Hub
    r"hv[sbr]\.[A-Za-z0-9_-]{24,}",  # HashiCorp Vault
    r"hf_[A-Za-z0-9]{30,}\b",  # Hugging Face
    r"SG\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{40,}",  # SendGrid
    r"hc[ax]ik_[A-Za-z0-9]{20,}|sntry[su]_[A-Za-z0-9+/=_-]{40,}|NRAK-[A-Z0-9]{27}\b",  # Honeycomb, Sentry, New Relic
    r"dapi[a-f0-9]{32}\b|do[por]_v1_[a-f0-9]{64}\b|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",  # Databricks, DO, Shopify
    r"lin_api_[A-Za-z0-9]{40}\b|PMAK-[a-f0-9]{24}-[a-f0-9]{34}\b",  # Linear, Postman
    r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}\b",  # age
)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # PEM private keys (RSA, EC, OPENSSH, PKCS#8, encrypted) and PGP private key blocks.
    (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
            r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.S,
        ),
        REDACTED,
    ),
    # user:password@ in URLs and DSNs: keep scheme, user and host.
    (
        re.compile(r"(?P<pre>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?P<post>@)"),
        r"\g<pre>" + REDACTED + r"\g<post>",
    ),
    # A key as the URL's user (Sentry DSNs, ``https://<token>@host``): no person's name is 20 such characters.
    (
        re.compile(r"(?P<pre>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://)[A-Za-z0-9_-]{20,}(?P<post>@)"),
        r"\g<pre>" + REDACTED + r"\g<post>",
    ),
    # Incoming-webhook URLs, whose path is the credential (Slack, Mattermost, Discord, Teams): keep the host.
    (
        re.compile(
            r"(?P<pre>https?://(?:hooks\.slack\.com/(?:services|workflows|triggers)/|"
            r"(?:[\w-]+\.)*(?:discord(?:app)?\.com)/api/webhooks/|[\w.-]+\.webhook\.office\.com/webhook\w*/|"
            r"[\w.:-]+/hooks/(?=[a-z0-9]{26}(?![A-Za-z0-9])))"
            r")[^\s\"'<>]+",
        ),
        r"\g<pre>" + REDACTED,
    ),
    # Key=value pairs in DSNs, connection strings, query strings, command lines and JSON or YAML
    # quoted in text (``db_password=…``, ``PGPASSWORD=…``, ``_authToken=…``, ``AccountKey=…``,
    # ``"api_key": "…"``).
    (
        re.compile(
            r"(?P<pre>(?<![A-Za-z0-9])(?:(?:pg|mysql_root_|_?auth)?(?:password|passwd|secret|token|api[_-]?key)|pwd|sig|signature|"
            r"(?:[a-z0-9]+_)+pass|"  # DB_PASS=, SMTP_PASS: (an environment variable's name; a bare "pass: 3" is a count)
            r"(?:account|shared[_-]?access)[_-]?key|shared[_-]?access[_-]?signature|x-honeycomb-team)"
            r"['\"]?\s*[=:]\s*)(?P<q>['\"]?)[^\s&;'\",}]+",
            re.I,
        ),
        r"\g<pre>\g<q>" + REDACTED,
    ),
    # OTLP exporter headers set in the environment (``key=value,...``): every value is a credential.
    (re.compile(r"(?P<pre>OTEL_EXPORTER_OTLP(?:_[A-Z]+)?_HEADERS\s*[=:]\s*)[^\s]+"), r"\g<pre>" + REDACTED),
    # Secrets given as command-line options: ``--password hunter2``, ``--api-key=…``.
    (
        re.compile(
            r"(?P<pre>--(?:password|passwd|pass|token|secret|client[_-]?secret|api[_-]?key|access[_-]?key)"
            r"(?:=|\s+))(?P<q>['\"]?)[^\s'\",]+",
            re.I,
        ),
        r"\g<pre>\g<q>" + REDACTED,
    ),
    # Cookies sent or set: the whole header value.
    (re.compile(r"(?P<pre>\b(?:Set-)?Cookie\s*:\s*)[^\r\n\"]+", re.I), r"\g<pre>" + REDACTED),
    # Authorization headers.
    (re.compile(r"(?P<pre>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=-]{8,}", re.I), r"\g<pre>" + REDACTED),
    # Tokens whose own shape says what they are (one scan for all of them).
    (re.compile(rf"\b(?:{'|'.join(_TOKENS)})"), REDACTED),
    (re.compile(r"(?P<pre>aws_secret_access_key\s*[=:]\s*)[A-Za-z0-9/+=]{40}", re.I), r"\g<pre>" + REDACTED),
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
