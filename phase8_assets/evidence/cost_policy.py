"""Cost policy: ``kind: CostAllocation`` (who pays for what) and ``kind: CostBudgets`` (how much)."""

from __future__ import annotations

from phase8_assets.evidence import EvidenceError, ReadResult, artifact_time, load_artifact


def _load(data: bytes, uri: str, kind: str) -> tuple[dict, object]:
    doc = load_artifact(data, uri, kind)
    return doc, artifact_time(doc, "reviewed").at


def normalise_key(key: str) -> str:
    """A tag key as attribution compares it (tenant, team and shared-rule keys alike): trimmed,
    lower-case, without the ``user:`` (``user_`` in CUR 2.0) prefix of AWS user tags."""
    key = key.strip().lower()
    return key[5:].strip() if key.startswith(("user:", "user_")) else key


def read_allocation(data: bytes, uri: str) -> ReadResult:
    doc, at = _load(data, uri, "CostAllocation")
    for i, rule in enumerate(doc.get("shared") or []):
        if rule["split"] == "fixed" and not rule.get("weights"):
            raise EvidenceError(f"shared[{i}].weights", "a fixed split needs weights per tenant")
        if not any(k in rule for k in ("service_category", "sub_account", "tag")):
            raise EvidenceError(f"shared[{i}]", "say which costs are shared: service_category, sub_account or tag")
    policy = {
        "tenant_keys": [normalise_key(k) for k in doc["tenant_keys"]],
        "team_keys": [normalise_key(k) for k in doc.get("team_keys") or []],
        "tenant_aliases": {k.strip().lower(): v for k, v in (doc.get("tenant_aliases") or {}).items()},
        "shared": [
            {**rule, "tag": {**rule["tag"], "key": normalise_key(rule["tag"]["key"])}} if rule.get("tag") else rule
            for rule in doc.get("shared") or []
        ],
    }
    return ReadResult(
        observed_at=at, timestamp_field="reviewed", summary={"shared_rules": len(policy["shared"])}, records=[policy]
    )


def read_budgets(data: bytes, uri: str) -> ReadResult:
    doc, at = _load(data, uri, "CostBudgets")
    names = [b["name"] for b in doc["budgets"]]
    if len(set(names)) != len(names):
        raise EvidenceError("budgets", "budget names must be unique")
    budgets = [
        {
            **b,
            "actual_thresholds": sorted(b.get("actual_thresholds") or [0.8, 1.0]),
            "forecast_thresholds": sorted(b.get("forecast_thresholds") or [0.8, 1.0]),
        }
        for b in doc["budgets"]
    ]
    return ReadResult(observed_at=at, timestamp_field="reviewed", summary={"budgets": names},
                      records=[{"basis": doc.get("basis", "effective"), "forecast": doc.get("forecast") or {},
                                "budgets": budgets}])  # fmt: skip
