"""The schema/version policy of docs/compliance/artifact-versions.md, checked for every shipped schema
and every phase8/v1 artifact of the demo evidence."""

import json
from pathlib import Path

import pytest

from phase8_assets.shared.artifacts import API_VERSION, known_kinds, schema_for, validate_artifact
from phase8_assets.shared.yaml_loader import load_yaml_documents
from phase8_assets_tests.conftest import DATA

SNAPSHOT = json.loads((Path(__file__).parent / "phase8_v1_schemas.json").read_text())


@pytest.mark.parametrize("kind", known_kinds())
def test_every_schema_follows_the_structure_rules(kind):
    schema = schema_for(kind)
    assert schema["$id"] == f"https://phase8.example/schemas/phase8/v1/{kind}.json"
    assert schema["title"] == kind
    assert schema["properties"]["apiVersion"] == {"const": API_VERSION}
    assert schema["properties"]["kind"] == {"const": kind}
    assert {"apiVersion", "kind"} <= set(schema["required"])
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("kind", known_kinds())
def test_changes_within_v1_are_additive(kind):
    assert kind in SNAPSHOT, f"a new kind: add {kind} to phase8_assets_tests/shared/phase8_v1_schemas.json"
    schema, first = schema_for(kind), SNAPSHOT[kind]
    gone = sorted(set(first["properties"]) - set(schema["properties"]))
    newly_required = sorted(set(schema["required"]) - set(first["required"]))
    assert gone == [], f"{kind}: removing {gone} is a breaking change: it needs phase8/v2"
    assert newly_required == [], f"{kind}: requiring {newly_required} is a breaking change: it needs phase8/v2"


def demo_artifacts():
    for path in sorted(DATA.rglob("*")):
        if path.suffix in (".yaml", ".yml", ".json") and b"phase8/v1" in path.read_bytes()[:4096]:
            yield path


def test_every_demo_artifact_validates_against_its_kind():
    checked = 0
    for path in demo_artifacts():
        for doc in load_yaml_documents(path.read_bytes(), str(path)):
            if isinstance(doc, dict) and doc.get("apiVersion") == API_VERSION:
                validate_artifact(doc, str(path))
                checked += 1
    assert checked >= 30
