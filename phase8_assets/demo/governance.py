"""Demo governance evidence: retention, deletion and Cedar access policies, the teams, a data
inventory of the three tenants, an active and a soon-expiring exception, and the governance
scenarios (an expired exception, a retention violation, a grant Cedar denies, a self-approved
exception)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from phase8_assets.demo.config import EVALUATION_TIME, TENANTS
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import write_text

RETENTION = """\
apiVersion: phase8/v1
kind: RetentionPolicy
id: chatterbox-retention
description: How long Chatterbox keeps each class of tenant data (Records Management Standard RM-3).
owner: team:data-governance
reviewed: "2026-10-20"
rules:
  - {id: messages, data_class: messages, max: P2Y}
  - {id: messages-eu, data_class: messages, jurisdiction: EU, max: P1Y}
  - {id: files, data_class: files, max: P3Y}
  - {id: audit-logs, data_class: audit_logs, min: P1Y, max: P7Y, legal_hold: suspends_deletion}
  - {id: telemetry, data_class: telemetry, max: P90D}
  - {id: backups, data_class: backups, max: P35D}
"""

DELETION = """\
apiVersion: phase8/v1
kind: DeletionPolicy
id: chatterbox-deletion
description: Deletion service levels and the proof each deletion run publishes.
owner: team:data-governance
reviewed: "2026-10-20"
slas:
  - {id: tenant-offboarding, applies_to: tenant_offboarding, within: P30D, proof: [deletion_report, row_count_zero]}
  - {id: user-erasure, applies_to: user_erasure, within: P30D, proof: [deletion_report]}
  - {id: backup-expiry, applies_to: backup_expiry, within: P7D, proof: [backup_purge_log]}
"""

ACCESS = """\
apiVersion: phase8/v1
kind: AccessPolicy
id: chatterbox-access
description: Who may read or export tenant data, and who may approve an exception.
owner: team:data-governance
reviewed: "2026-10-20"
cedar: |
  // Support reads tenant data that is not restricted.
  permit (principal in Phase8::Team::"support", action == Phase8::Action::"read", resource is Phase8::Dataset)
  when { resource.classification != "restricted" };
  // The data platform reads and exports telemetry and internal data.
  permit (principal in Phase8::Team::"data-platform", action in [Phase8::Action::"read", Phase8::Action::"export"],
          resource is Phase8::Dataset)
  when { resource.classification == "internal" || resource.data_class == "telemetry" };
  // Compliance reads and exports everything, restricted data included.
  permit (principal in Phase8::Team::"compliance", action in [Phase8::Action::"read", Phase8::Action::"export"],
          resource is Phase8::Dataset);
  // Nobody else exports restricted data, whatever another rule says.
  forbid (principal, action == Phase8::Action::"export", resource is Phase8::Dataset)
  when { resource.classification == "restricted" }
  unless { principal in Phase8::Team::"compliance" };
  // An exception is approved by the team that owns its gate (phase8.yaml owners) or a release manager;
  // the exception's owner, which its requester writes, may approve one only of a warn-level gate.
  permit (principal, action == Phase8::Action::"approve", resource is Phase8::Exception)
  when { principal in resource.gate_owner };
  permit (principal, action == Phase8::Action::"approve", resource is Phase8::Exception)
  when { !resource.blocking && principal in resource.owner };
  permit (principal in Phase8::Role::"release-manager", action == Phase8::Action::"approve",
          resource is Phase8::Exception);
"""

TEAMS = """\
apiVersion: phase8/v1
kind: Teams
description: Chatterbox engineering teams and the people who hold a role.
reviewed: "2026-11-02"
teams:
  data-governance: {members: [ines@chatterbox.example, kofi@chatterbox.example]}
  data-platform: {members: [arjun@chatterbox.example, mei@chatterbox.example]}
  support: {members: [sam@chatterbox.example]}
  compliance: {members: [olga@chatterbox.example]}
  tenancy: {members: [priya@chatterbox.example, tomas@chatterbox.example]}
  messaging: {members: [lena@chatterbox.example, marco@chatterbox.example]}
  platform-reliability:
    members: [ruth@chatterbox.example, deniz@chatterbox.example]
    roles: {release-manager: [ruth@chatterbox.example]}
"""

JURISDICTION = {"acme": "EU", "globex": "US", "initech": "EU"}
# data class -> (classification, age of the oldest record in days, configured retention); messages
# outside the EU are kept two years
CLASSES = {
    "messages": ("confidential", 300, "P1Y"),
    "files": ("confidential", 700, "P3Y"),
    "audit_logs": ("restricted", 900, "P7Y"),
    "telemetry": ("internal", 80, "P90D"),
    "backups": ("restricted", 30, "P35D"),
}


def _ts(dt: datetime) -> str:
    return format_timestamp(dt)


def inventory(at: datetime, change=None) -> str:
    """The inventory taken 6 hours before ``at``; ``change(datasets)`` edits it for a scenario."""
    datasets = []
    for tenant in TENANTS:
        for data_class, (classification, days, retention) in CLASSES.items():
            if data_class == "messages" and JURISDICTION[tenant] != "EU":
                days, retention = 600, "P2Y"
            ds = {
                "id": f"{tenant}-{data_class.replace('_', '-')}",
                "data_class": data_class,
                "classification": classification,
                "tenant": tenant,
                "jurisdiction": JURISDICTION[tenant],
                "oldest_record": _ts(at - timedelta(days=days)),
                "retention": retention,
            }
            datasets.append(ds)
    by_id = {ds["id"]: ds for ds in datasets}
    # acme moved 4-year-old files from its legacy store (exception GOV-311 accepts them until the purge).
    by_id["acme-files"]["oldest_record"] = _ts(at - timedelta(days=1500))
    by_id["globex-messages"]["deletion_runs"] = [
        {"id": "DEL-7731", "type": "user_erasure", "requested_at": _ts(at - timedelta(days=12)),
         "completed_at": _ts(at - timedelta(days=11)), "outcome": "succeeded", "proof": ["deletion_report"]},
        # the vendor's cold backups hold it up: exception GOV-298 accepts the delay for now
        {"id": "DEL-7702", "type": "user_erasure", "requested_at": _ts(at - timedelta(days=41)),
         "completed_at": None, "outcome": "pending", "proof": []},
    ]  # fmt: skip
    by_id["initech-backups"]["deletion_runs"] = [
        {"id": "BKP-2291", "type": "backup_expiry", "requested_at": _ts(at - timedelta(days=3)),
         "completed_at": _ts(at - timedelta(days=2)), "outcome": "succeeded", "proof": ["backup_purge_log"]},
    ]  # fmt: skip
    by_id["acme-messages"]["access_grants"] = [{"principal": "team:support", "action": "read"}]
    by_id["globex-telemetry"]["access_grants"] = [{"principal": "team:data-platform", "action": "export"}]
    by_id["initech-audit-logs"]["access_grants"] = [{"principal": "olga@chatterbox.example", "action": "export"}]
    if change:
        change(by_id)
    doc = {"apiVersion": "phase8/v1", "kind": "DataInventory", "generated_at": _ts(at - timedelta(hours=6)),
           "datasets": datasets}  # fmt: skip
    return json.dumps(doc, indent=2) + "\n"


def exception(ident: str, subject: str, rule: str, owner: str, reason: str, requested_by: str, approved_by: str,
              approved_at: str, expires: str) -> str:  # fmt: skip
    return f"""\
apiVersion: phase8/v1
kind: Waiver
id: {ident}
gate: policy_compliance
subject: "{subject}"
rule: "{rule}"
owner: {owner}
reason: {reason}
ticket: {ident}
requested_by: {requested_by}
approved_by: {approved_by}
approved_at: "{approved_at}"
expires: "{expires}"
"""


LEGACY_FILES = ("GOV-311", "acme-files", "files.max", "team:data-platform",
                "Files migrated from acme's legacy store keep their dates until the purge job CHAT-5120 lands.",
                "arjun@chatterbox.example", "ines@chatterbox.example", "2026-11-05T09:00:00Z", "2027-02-01T00:00:00Z")  # fmt: skip
COLD_BACKUP = ("GOV-298", "globex-messages/DEL-7702", "deletion.user-erasure", "team:data-governance",
               "The backup vendor purges cold copies monthly; DEL-7702 completes with the December purge.",
               "kofi@chatterbox.example", "ines@chatterbox.example", "2026-09-10T09:00:00Z", "2026-11-28T00:00:00Z")  # fmt: skip


def evidence(at: datetime) -> dict[str, str]:
    return {
        "policy/governance/retention.yaml": RETENTION,
        "policy/governance/deletion.yaml": DELETION,
        "policy/governance/access.yaml": ACCESS,
        "policy/governance/teams.yaml": TEAMS,
        "evidence/governance/inventory.json": inventory(at),
        "waivers/gov-311.yaml": exception(*LEGACY_FILES),
        "waivers/gov-298.yaml": exception(*COLD_BACKUP),
    }


def scenarios(out: Path) -> list[Path]:
    files = []
    header = "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
    inventory_kind = 'evidence:\n  data_inventory:\n    paths: ["inventory.json"]\n'

    def put(rel: str, text: str) -> None:
        files.append(write_text(out / "scenarios" / rel, text))

    put("exception-expired/phase8.yaml", header + "description: exception GOV-298 expired; the pending erasure "
        "counts again and policy_compliance fails\n" + 'waivers: ["waivers/*.yaml"]\n')  # fmt: skip
    put("exception-expired/waivers/gov-311.yaml", exception(*LEGACY_FILES))
    put("exception-expired/waivers/gov-298.yaml", exception(*COLD_BACKUP[:-1], "2026-11-15T00:00:00Z"))

    def old_messages(by_id: dict) -> None:
        by_id["initech-messages"]["oldest_record"] = _ts(EVALUATION_TIME - timedelta(days=455))

    put("retention-violation/phase8.yaml", header + "description: initech keeps EU messages 15 months; the EU "
        "maximum is one year\n" + inventory_kind)  # fmt: skip
    put("retention-violation/inventory.json", inventory(EVALUATION_TIME, old_messages))

    def contractor_export(by_id: dict) -> None:
        by_id["globex-audit-logs"]["access_grants"] = [{"principal": "dana@contractor.example", "action": "export"}]

    put("access-denied-grant/phase8.yaml", header + "description: a contractor may export globex's audit logs; "
        "the Cedar access policy forbids it\n" + inventory_kind)  # fmt: skip
    put("access-denied-grant/inventory.json", inventory(EVALUATION_TIME, contractor_export))

    put("exception-self-approved/phase8.yaml", header + "description: exception GOV-311 is approved by its own "
        "requester; it is refused and acme's old files count again\n" + 'waivers: ["waivers/*.yaml"]\n')  # fmt: skip
    self_approved = list(LEGACY_FILES)
    self_approved[6] = self_approved[5]
    put("exception-self-approved/waivers/gov-311.yaml", exception(*self_approved))
    put("exception-self-approved/waivers/gov-298.yaml", exception(*COLD_BACKUP))
    return files
