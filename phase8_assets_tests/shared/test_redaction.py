import json

from hypothesis import given
from hypothesis import strategies as st

from phase8_assets.shared.redaction import REDACTED, redact, redact_text

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----"
)


def test_secret_keys_are_redacted_whole_and_shape_kept():
    doc = {"password": "hunter2", "db": {"api_key": "abc", "host": "db.internal"}, "secrets": {"k": {"v": "x"}}}
    assert redact(doc) == {
        "password": REDACTED,
        "db": {"api_key": REDACTED, "host": "db.internal"},
        "secrets": {"k": {"v": REDACTED}},
    }


def test_secret_values_inside_text():
    text = (
        f"key {AWS_KEY} jwt {JWT} url postgres://app:s3cr3t@db:5432/chat "
        "header Authorization: Bearer abcdefghijklmnop token=xyz123 slack xoxb-1234567890-abcdef"
    )
    out = redact_text(text)
    for secret in (AWS_KEY, JWT, "s3cr3t", "abcdefghijklmnop", "xyz123", "xoxb-1234567890-abcdef"):
        assert secret not in out
    assert "postgres://app:" in out and "@db:5432/chat" in out


def test_passwords_under_pass_variable_names_inside_text():
    """``is_secret_key`` redacts a key ``DB_PASS`` whole, but the same assignment inside text (a
    dagster.yaml ``env_vars`` entry, a compose file, a log line) passed into a diagnostics bundle."""
    for text in ("DB_PASS=plainpw123456", "export SMTP_PASS=\"plainpw123456\"", "- MYSQL_PASS: plainpw123456",
                 "env_vars: ['REDIS_PASS=plainpw123456', 'LOG_LEVEL=info']"):  # fmt: skip
        out = redact_text(text)
        assert "plainpw123456" not in out and REDACTED in out, out
    assert "LOG_LEVEL=info" in redact_text("env_vars: ['REDIS_PASS=plainpw123456', 'LOG_LEVEL=info']")
    for kept in ('{"pass": 5, "fail": 0}', "bypass=true", "gates pass: 12"):
        assert redact_text(kept) == kept


def test_private_keys():
    assert redact_text(f"before\n{PEM}\nafter") == f"before\n{REDACTED}\nafter"


def test_extra_secret_keys_and_non_secret_lookalikes():
    doc = {"configuration": {"api_url": "https://x", "region": "eu"}, "token_type": "bearer", "tokens_used": 3}
    out = redact(doc, secret_keys=("configuration",))
    assert out == {"configuration": {"api_url": REDACTED, "region": REDACTED}, "token_type": "bearer", "tokens_used": 3}


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60), st.sampled_from([AWS_KEY, JWT, PEM]))
def test_a_secret_embedded_anywhere_never_survives(prefix, secret):
    doc = {"notes": [f"{prefix} {secret} tail"]}
    assert secret not in json.dumps(redact(doc))


def test_every_secret_of_the_corpus_is_redacted_in_its_context():
    from phase8_assets_tests.corpus.secrets import SECRETS, leaks

    for secret in SECRETS:
        assert leaks(redact_text(f"before {secret.in_context()} after")) == [], secret.in_context()


def test_dataclasses_and_tuples_are_walked_and_keep_their_type():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Run:
        title: str
        tags: tuple[str, ...]
        passed: int

    out = redact(Run(f"failover {AWS_KEY}", ("env:prod", f"Bearer {'x' * 20}"), 3))
    assert out == Run(f"failover {REDACTED}", ("env:prod", f"Bearer {REDACTED}"), 3)  # 'passed' is no password


def test_credential_keys_of_webhooks_connections_and_otlp_exporters_are_redacted_whole():
    doc = {
        "PHASE8_SLACK_WEBHOOK": "https://hooks.example/x",
        "incoming_webhook_url": "https://chat.example/hooks/abc",
        "connection_string": "Server=db;Database=chat",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "api-team=abc",
        "webhooks": ["data", "events"],  # a list of test categories (isolation), not a credential
    }
    assert redact(doc) == {
        "PHASE8_SLACK_WEBHOOK": REDACTED,
        "incoming_webhook_url": REDACTED,
        "connection_string": REDACTED,
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": REDACTED,
        "webhooks": ["data", "events"],
    }


def test_what_only_looks_like_a_credential_is_kept():
    kept = [
        "https://api.github.com/repos/acme/chat/hooks/12345678",  # a hook's id, not its secret
        "ssh://git@git.acme.example/chat.git",
        "s3://phase8-evidence/perf/2026-11-30/bench.json",
        "max_tokens=4096 tokens_used: 3 token_type: bearer",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0gUuYc2r8Qb3z5xhWd user@host",  # a public key
        "cookies were cleared by the client",
        # benchmark and test names that contain a keyword: evidence, not a credential
        "BenchmarkJWTParseToken: 123 ns/op",
        "test_login[csrftoken=abc]",
        "TestClientSecret: rotates",
        "https://ci.acme.example/hooks/ABCDEFGHIJKLMNOPQRSTUVWXYZ/status",
        "s3://perf-evidence/runs/sk-ingest-pipeline-throughput-p99/bench.json",  # a slug, not a key
    ]
    for text in kept:
        assert redact_text(text) == text
