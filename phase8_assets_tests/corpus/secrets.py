"""The product's secret corpus: generated secrets of every shape the redactor knows, in context.

Any test that must prove "no secret leaves" uses it (drill journals, diagnostics bundles, the
audit log). The secrets are generated from a fixed seed, so they are the same on every run and
none of them is a real credential.

API:

- ``SECRETS: list[Secret]`` — at least 50, covering every shape in ``SHAPES``.
- ``Secret.value`` — the secret material itself; it must never appear in anything written.
- ``Secret.in_context()`` — the secret as it appears in real text (a header, a URL, a config
  line, a PEM block...): what a test injects. The redactor finds secrets by their context where
  the value alone looks like any other word (a password).
- ``Secret.needles`` — the substrings a leak check searches for (the value; for a private key,
  each line of its body, since JSON and logs may re-wrap the block).
- ``leaks(text) -> list[Secret]`` — the secrets found in ``text`` (str or bytes).
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass

SHAPES = (
    "aws-access-key-id",
    "aws-secret-access-key",
    "bearer-token",
    "basic-auth",
    "jwt",
    "password-in-url",
    "private-key",
    "github-token",
    "github-fine-grained-token",
    "gitlab-token",
    "slack-token",
    "stripe-key",
    "google-api-key",
    "openai-key",
    "key-value",
    "webhook-url",
    "key-as-url-user",
    "connection-string-key",
    "cookie",
    "pgp-private-key",
    "prefixed-token",
    "otlp-headers",
)

_rng = random.Random(8)
_ALNUM = string.ascii_letters + string.digits


def _chars(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


@dataclass(frozen=True)
class Secret:
    shape: str
    value: str
    context: str  # a format string with one ``{}`` where the value goes

    def in_context(self) -> str:
        return self.context.format(self.value)

    @property
    def needles(self) -> tuple[str, ...]:
        if self.shape in ("private-key", "pgp-private-key"):
            return tuple(line for line in self.value.splitlines() if line and not line.startswith("-----"))
        return (self.value,)


def _jwt() -> str:
    def part(doc: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': _chars(12), 'iat': 1700000000})}.{_chars(43)}"


def _pem(kind: str) -> str:
    body = "\n".join(_chars(64) for _ in range(4))
    label = f"{kind} PRIVATE KEY" if kind else "PRIVATE KEY"
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


def _pgp() -> str:
    body = "\n".join(_chars(64, _ALNUM + "+/") for _ in range(4))
    return f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{body}\n=Ab1c\n-----END PGP PRIVATE KEY BLOCK-----"


def _prefixed() -> str:
    hexa = "0123456789abcdef"
    return _rng.choice(
        [
            lambda: "npm_" + _chars(36),
            lambda: "pypi-AgEIcHlwaS5vcmc" + _chars(60, _ALNUM + "_-"),
            lambda: "dckr_pat_" + _chars(27, _ALNUM + "_-"),
            lambda: "hvs." + _chars(90, _ALNUM + "_-"),
            lambda: "hf_" + _chars(34),
            lambda: "SG." + _chars(22, _ALNUM + "_-") + "." + _chars(43, _ALNUM + "_-"),
            lambda: "glsa_" + _chars(32) + "_" + _chars(8, hexa),
            lambda: "glrt-" + _chars(20),
            lambda: "xapp-1-A" + _chars(10, string.ascii_uppercase + string.digits) + "-" + _chars(64, hexa),
            lambda: "hcaik_" + _chars(58, hexa),
            lambda: "AGE-SECRET-KEY-1" + _chars(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"),
        ]
    )()


_GENERATORS = {
    "aws-access-key-id": (
        lambda: _rng.choice(["AKIA", "ASIA"]) + _chars(16, string.ascii_uppercase + string.digits),
        ["aws_access_key_id = {}", "credentials for {} were rotated", "AWS key {}"],
    ),
    "aws-secret-access-key": (
        lambda: _chars(40, _ALNUM + "/+"),
        ["aws_secret_access_key={}", "AWS_SECRET_ACCESS_KEY: {}", "aws_secret_access_key = {}"],
    ),
    "bearer-token": (
        lambda: _chars(32, _ALNUM + "-._~"),
        ["Authorization: Bearer {}", "curl -H 'Authorization: Bearer {}' https://chat.internal/api", "bearer {}"],
    ),
    "basic-auth": (
        lambda: base64.b64encode(f"svc-{_chars(6)}:{_chars(16)}".encode()).decode(),
        ["Authorization: Basic {}", "basic {} sent to the proxy"],
    ),
    "jwt": (_jwt, ["session cookie {}", "id_token={}", "token {} expired"]),
    "password-in-url": (
        lambda: _chars(18),
        [
            "postgres://chat:{}@db.internal:5432/chat",
            "redis://default:{}@cache:6379/0",
            "https://bot:{}@hooks.internal/x",
        ],
    ),
    "private-key": (
        lambda: _pem(_rng.choice(["RSA", "EC", "OPENSSH", ""])),
        ["{}", "key material:\n{}\n(end)"],
    ),
    "github-token": (
        lambda: _rng.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + _chars(36),
        ["GITHUB_TOKEN {}", "git clone https://x-access-token:{}@github.com/org/repo"],
    ),
    "github-fine-grained-token": (lambda: "github_pat_" + _chars(22) + "_" + _chars(59), ["token {} in CI"]),
    "gitlab-token": (lambda: "glpat-" + _chars(20), ["PRIVATE-TOKEN {}", "gitlab {}"]),
    "slack-token": (
        lambda: _rng.choice(["xoxb-", "xoxp-", "xoxa-"]) + f"{_rng.randrange(10**11)}-{_chars(24)}",
        ["slack bot {} posted", "SLACK_TOKEN {}"],
    ),
    "stripe-key": (lambda: _rng.choice(["sk_live_", "rk_test_"]) + _chars(24), ["stripe {}"]),
    "google-api-key": (lambda: "AIza" + _chars(35, _ALNUM + "_-"), ["maps key {}", "?key={}"]),
    "openai-key": (lambda: "sk-" + _chars(40), ["OPENAI {}"]),
    "key-value": (
        lambda: _chars(14),
        [
            "password={}",
            "pwd: {}",
            "api_key={}",
            "secret = {}",
            "token: '{}'",
            "--password {}",
            "--api-key={}",
            "sig={}&x=1",
            "X-Api-Key: {}",
            "DB_PASSWORD={}",
            '{{"db_password": "{}"}}',
            "PGPASSWORD={} psql -h db.internal",
            "//registry.npmjs.org/:_authToken={}",
            "MYSQL_ROOT_PASSWORD: {}",
        ],
    ),
    "webhook-url": (
        lambda: _chars(26, string.ascii_lowercase + string.digits),  # a Mattermost hook id's shape
        [
            "posted to https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/{}",
            "https://chat.acme.example/hooks/{} (incoming webhook)",
            "https://discord.com/api/webhooks/112233445566778899/{}",
            "https://acme.webhook.office.com/webhookb2/1f2e@9a8b/IncomingWebhook/{}/77aa",
        ],
    ),
    "key-as-url-user": (
        lambda: "".join(_rng.choice("0123456789abcdef") for _ in range(32)),
        ["SENTRY_DSN=https://{}@o450123.ingest.sentry.io/4504", "git clone https://{}@github.com/org/repo"],
    ),
    "connection-string-key": (
        lambda: _chars(86, _ALNUM + "+/") + "==",
        [
            "DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey={};EndpointSuffix=core.windows.net",
            "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey={}",
        ],
    ),
    "cookie": (
        lambda: _chars(26).lower(),
        ["Cookie: MMAUTHTOKEN={}; MMUSERID=abc", "set-cookie: session={}; Path=/; HttpOnly"],
    ),
    "pgp-private-key": (_pgp, ["{}", "signing key:\n{}"]),
    "prefixed-token": (_prefixed, ["{}", "NPM_CONFIG {} in .npmrc", "token={}", "export VAULT {}"]),
    "otlp-headers": (
        lambda: _chars(32),
        ["x-honeycomb-team={}", "OTEL_EXPORTER_OTLP_HEADERS=x-honeycomb-team={},x-honeycomb-dataset=chat"],
    ),
}


def _generate() -> list[Secret]:
    out = []
    for shape in SHAPES:
        make, contexts = _GENERATORS[shape]
        for context in contexts * (2 if len(contexts) < 3 else 1):
            out.append(Secret(shape, make(), context))
    return out


SECRETS: list[Secret] = _generate()


def leaks(text: str | bytes) -> list[Secret]:
    """The secrets of the corpus whose material appears in ``text``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [s for s in SECRETS if any(needle in text for needle in s.needles)]
