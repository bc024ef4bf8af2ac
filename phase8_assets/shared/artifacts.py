"""Our own artifacts (``apiVersion: phase8/v1`` + ``kind``) and their JSON Schemas.

Each kind has a schema file ``phase8_assets/schemas/<Kind>.json``. ``validate_artifact`` checks
the version and kind first, so a wrong or missing version is a clear one-line error rather than a
wall of schema messages, then validates against the kind's schema.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: it costs a tenth of the code location's import time
    import jsonschema

API_VERSION = "phase8/v1"


class ArtifactError(ValueError):
    """An artifact that does not match its kind's schema. ``field`` is a dotted path."""

    def __init__(self, source: str, field: str, reason: str):
        super().__init__(f"{source}: {field}: {reason}")
        self.source = source
        self.field = field
        self.reason = reason


def known_kinds() -> list[str]:
    files = resources.files("phase8_assets.schemas").iterdir()
    return sorted(f.name[: -len(".json")] for f in files if f.name.endswith(".json"))


@cache
def schema_for(kind: str) -> dict:
    path = resources.files("phase8_assets.schemas") / f"{kind}.json"
    if not path.is_file():
        raise KeyError(kind)
    return json.loads(path.read_text(encoding="utf-8"))


def field_path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _errors(doc: Any, schema: dict) -> list[jsonschema.ValidationError]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    return sorted(
        validator.iter_errors(doc), key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path)))
    )


def check_schema(doc: Any, kind: str, source: str) -> None:
    """Validate ``doc`` against ``kind``'s schema; raise the most specific error, if any."""
    errors = _errors(doc, schema_for(kind))
    if errors:
        from jsonschema.exceptions import best_match

        best = best_match(errors)
        raise ArtifactError(source, field_path(best.absolute_path), _message(best))


def schema_problems(doc: Any, schema: dict) -> list[tuple[str, str]]:
    """Every ``(field, reason)`` by which ``doc`` breaks ``schema`` (a contract that is not one of our
    kinds, such as the health response format), in the same words as ``check_schema``."""
    return [(field_path(e.absolute_path), _message(e)) for e in _errors(doc, schema)]


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "dependentRequired":  # e.g. approved_by without approved_at
        present = next(k for k, needs in error.validator_value.items() if k in error.instance)
        missing = [k for k in error.validator_value[present] if k not in error.instance]
        return f"{', '.join(map(repr, missing))} is required when {present!r} is set"
    if error.validator == "additionalProperties":
        return error.message + " (check the spelling; see the kind's schema)"
    return f"expected {_expected(error)}, got {json.dumps(error.instance, default=str)[:80]}"


def _expected(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "description" in schema:
        return schema["description"]
    if error.validator == "enum":
        return "one of " + "|".join(map(str, error.validator_value))
    if error.validator == "const":
        return repr(error.validator_value)
    if error.validator == "pattern":
        return f"a string matching {error.validator_value}"
    if error.validator == "type":
        return f"a value of type {error.validator_value}"
    return f"{error.validator} {error.validator_value}"


def validate_artifact(doc: Any, source: str, expected_kind: str | None = None) -> dict:
    """Check ``apiVersion`` and ``kind`` (and that the kind is ``expected_kind``), then the schema."""
    if not isinstance(doc, dict):
        raise ArtifactError(
            source, "(document)", f"expected a mapping with apiVersion and kind, got {type(doc).__name__}"
        )
    version = doc.get("apiVersion")
    if version != API_VERSION:
        got = "nothing" if version is None else repr(version)
        raise ArtifactError(source, "apiVersion", f"expected {API_VERSION!r}, got {got}")
    kind = doc.get("kind")
    if expected_kind is not None and kind != expected_kind:
        raise ArtifactError(source, "kind", f"expected {expected_kind!r}, got {kind!r}")
    if kind not in known_kinds():
        raise ArtifactError(source, "kind", f"expected one of {'|'.join(known_kinds())}, got {kind!r}")
    check_schema(doc, kind, source)
    return doc
