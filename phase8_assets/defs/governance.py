"""Stream C, data governance as code: the policies, the data inventory, every rule × dataset
evaluated, the exceptions and their states, and the ``policy_compliance`` and
``policy_exceptions`` gates."""

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.resources import Phase8Settings
from phase8_assets.domains.exceptions import exception_states
from phase8_assets.domains.governance import (
    OUTCOMES,
    Policies,
    compliance_gate,
    evaluate,
    exceptions_gate,
    foreign_exceptions,
    inventory_datasets,
    with_exceptions,
)
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import markdown_table

GROUP = "governance"
OWNERS = ["team:data-governance"]


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="The governance policies in force: retention (phase8 RetentionPolicy and ODCS v3 contracts' "
    "retention), deletion SLAs, Cedar access policies and the teams they name.",
)
def governance_policies(evidence_files: EvidenceBatch) -> dg.Output:
    policies = Policies.from_batch(evidence_files)
    rows = [
        [kind, doc.get("id", "teams"), doc.get("owner", ""), doc.get("reviewed", ""), uri.rsplit("/", 1)[-1]]
        for kind, docs in (("retention", policies.retention), ("deletion", policies.deletion),
                           ("access", policies.access), ("teams", policies.teams))
        for doc, uri in docs
    ] + [["odcs retention", rule["id"], "", "", uri.rsplit("/", 1)[-1]] for rule, uri in policies.contracts]  # fmt: skip
    return dg.Output(
        policies,
        metadata={
            "policies": len(rows),
            "table": dg.MetadataValue.md(
                markdown_table(["kind", "id", "owner", "reviewed", "file"], rows, empty="_no governance policy_")
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="The data inventory, merged from every DataInventory file (a dataset several files list is "
    "taken from the newest): datasets with data class, classification, tenant, oldest record, deletion runs and "
    "access grants, each with its file.",
)
def data_inventory(evidence_files: EvidenceBatch) -> dg.Output:
    datasets = inventory_datasets(evidence_files)
    rows = [
        [ds["tenant"], ds["id"], ds["data_class"], ds["classification"], ds["jurisdiction"],
         format_timestamp(ds["oldest_record"]) if ds["oldest_record"] else "empty",
         len(ds.get("deletion_runs") or []), len(ds.get("access_grants") or []), uri.rsplit("/", 1)[-1]]
        for ds, uri in datasets
    ]  # fmt: skip
    return dg.Output(
        datasets,
        metadata={
            "files": dg.MetadataValue.json(sorted({uri for _, uri in datasets})),
            "datasets": len(datasets),
            "tenants": dg.MetadataValue.json(sorted({ds["tenant"] for ds, _ in datasets})),
            "table": dg.MetadataValue.md(
                markdown_table(
                    [
                        "tenant",
                        "dataset",
                        "class",
                        "classification",
                        "jurisdiction",
                        "oldest record",
                        "deletions",
                        "grants",
                        "file",
                    ],
                    rows,
                    empty="_no readable DataInventory_",
                )  # fmt: skip
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="Every governance rule × target (dataset, deletion run, access grant): pass, violation, "
    "excepted (an approved exception in force accepts it) or not-applicable, with the reason.",
)
def policy_evaluations(
    settings: Phase8Settings, evidence_files: EvidenceBatch, governance_policies: Policies, data_inventory: list
) -> dg.Output:
    config = settings.load()
    at = settings.evaluation_time(config)
    raw = evaluate(governance_policies, data_inventory, at,
                   config.owner_for("policy_compliance"))  # fmt: skip
    evaluations = with_exceptions(raw, exception_states(evidence_files, config, at))
    order = {"violation": 0, "excepted": 1, "pass": 2, "not-applicable": 3}
    rows = [
        [e.outcome, e.tenant, e.target, e.rule, e.observed, e.limit, e.reason]
        for e in sorted(evaluations, key=lambda e: (order[e.outcome], e.tenant, e.target, e.rule))
    ]
    return dg.Output(
        raw,
        metadata={
            **{outcome: sum(e.outcome == outcome for e in evaluations) for outcome in OUTCOMES},
            "evaluations": dg.MetadataValue.md(
                markdown_table(
                    ["outcome", "tenant", "target", "rule", "observed", "limit", "reason"],
                    rows,
                    empty="_nothing evaluated_",
                )  # fmt: skip
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="Every exception (kind: Waiver) with its state (requested, refused, approved, active, expiring, "
    "expired, renewed), and what other tools' exception files (Trivy, Snyk) would let rot.",
)
def policy_exceptions(settings: Phase8Settings, evidence_files: EvidenceBatch) -> dg.Output:
    config = settings.load()
    at = settings.evaluation_time(config)
    states = exception_states(evidence_files, config, at)
    foreign = foreign_exceptions(evidence_files, at)
    rows = [
        [s.state, s.waiver.id, s.waiver.gate, s.waiver.subject, s.waiver.owner, s.waiver.approved_by or "—",
         format_timestamp(s.waiver.expires), s.reason]
        for s in sorted(states, key=lambda s: (s.state, s.waiver.id))
    ]  # fmt: skip
    return dg.Output(
        {"states": states, "foreign": foreign},
        metadata={
            **{state: sum(s.state == state for s in states)
               for state in ("requested", "refused", "approved", "active", "expiring", "expired", "renewed")},
            "exceptions": dg.MetadataValue.md(
                markdown_table(["state", "id", "gate", "subject", "owner", "approved by", "expires", "why"], rows,
                               empty="_no exceptions_")
            ),
            "foreign_exceptions": dg.MetadataValue.md(
                markdown_table(["entry", "problem", "fix", "file"], [list(r) for r in foreign], empty="_none_")
            ),
        },
    )  # fmt: skip


policy_compliance_gate = gate_asset(
    "policy_compliance", group=GROUP, owners=OWNERS, evaluate=compliance_gate,
    ins={"policy_evaluations": dg.AssetIn("policy_evaluations")},
)  # fmt: skip
policy_exceptions_gate = gate_asset(
    "policy_exceptions", group=GROUP, owners=OWNERS, evaluate=exceptions_gate,
    ins={"policy_exceptions": dg.AssetIn("policy_exceptions")},
)  # fmt: skip
