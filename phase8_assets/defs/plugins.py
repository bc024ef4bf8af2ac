"""Stream D, plugin and bot security: bundles, their verification against the trust policy, and the
``plugin_signatures`` and ``plugin_capabilities`` gates."""

from datetime import datetime

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.resources import Phase8Settings
from phase8_assets.domains.gates import Finding
from phase8_assets.domains.plugins import CAPABILITY_GATE, SIGNATURES, gate_findings, verify
from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.evidence.upgrade import Version, parse_version
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import markdown_table

GROUP = "security"
OWNERS = ["team:security"]
BUNDLES, TRUST = "plugin_bundles", "plugin_trust"


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="Every plugin and bot bundle of the evidence (.tar.gz): its plugin.json, file hashes, MANIFEST and "
    "signature, or why it may not be unpacked (paths, links, tar limits checked from the headers).",
)
def plugin_bundles(evidence_files: EvidenceBatch) -> dg.Output:
    files = evidence_files.files_of(BUNDLES)
    bundles = [f.records[0] for f in files]
    rows = [[b.source.rsplit("/", 1)[-1], b.plugin_id or "?", b.plugin.get("version", "?"), b.plugin.get("publisher", "?"),
             len(b.files), "yes" if b.signature else "no", ", ".join(r.reason for r in b.refusals) or "-"]
            for b in bundles]  # fmt: skip
    return dg.Output(
        bundles,
        metadata={
            "bundles": len(bundles),
            "rejected": len(evidence_files.rejections_of(BUNDLES)),
            "plugin_bundles": dg.MetadataValue.md(
                markdown_table(
                    ["file", "plugin", "version", "publisher", "files", "signed", "refused"], rows, empty="_no bundles_"
                )  # fmt: skip
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="Each plugin x version verified against the PluginTrustPolicy at the evaluation time: signer, trust "
    "level, signature, files intact, capabilities requested vs allowed, verdict with every reason.",
)
def plugin_verifications(settings: Phase8Settings, evidence_files: EvidenceBatch, plugin_bundles: list) -> dg.Output:
    config = settings.load()
    at = settings.evaluation_time(config)
    policies = evidence_files.files_of(TRUST)
    policy = policies[0].records[0] if len(policies) == 1 else None
    release, release_problem = _release(config)
    results = [verify(b, policy, at, plugin_bundles, release) for b in plugin_bundles] if policy else []
    rows = [
        [v.bundle.subject, f"{v.signer} ({v.publisher or 'unknown key'})" if v.signer else "-", v.trust or "-", v.signature,
         {True: "yes", False: "no", None: "-"}[v.files_intact], ", ".join(v.requested) or "-",
         ", ".join(v.allowed) or "-", v.verdict, "; ".join(f"{p.reason}: {p.observed}" for p in v.problems) or "-"]
        for v in results
    ]  # fmt: skip
    return dg.Output(
        {"policy": policy, "policy_uri": policies[0].uri if len(policies) == 1 else None, "results": results,
         "policies": len(policies), "release_problem": release_problem},
        metadata={
            "verified": sum(v.verdict == "verified" for v in results),
            "refused": sum(v.verdict == "refused" for v in results),
            "plugin_verifications": dg.MetadataValue.md(
                markdown_table(["plugin", "signer", "trust", "signature", "files intact", "requested", "allowed",
                                "verdict", "reasons"], rows, empty="_no verifications_")  # fmt: skip
            ),
        },
    )  # fmt: skip


def _release(config) -> tuple[Version | None, str | None]:
    """The release the plugins must run on (``release.version``), or why it is not a version."""
    try:
        return parse_version(config.release.get("version"), "release.version"), None
    except EvidenceError as exc:
        return None, f"{exc.field}: {exc.reason}"


def _evidence_findings(
    gate: str, batch: EvidenceBatch, config, verifications: dict, owner: str, runbook: str, at: datetime
) -> list[Finding]:
    """Fail closed: the kinds not configured, no (or more than one) readable trust policy, unreadable
    bundles; for plugin_capabilities, a release version the plugins' min_server_version cannot be compared with."""
    out = []
    if gate == CAPABILITY_GATE and verifications.get("release_problem"):
        out.append(Finding("error", "release", "release-version", verifications["release_problem"],
                           "MAJOR.MINOR.PATCH[-PRERELEASE], to compare each plugin's min_server_version with",
                           config.source, owner, runbook, {}))  # fmt: skip
    for kind in (BUNDLES, TRUST):
        if kind not in config.evidence:
            out.append(Finding("error", kind, "evidence-configured", f"evidence.{kind} is not in {config.source}",
                               f"evidence.{kind} configured (or gates.{gate} switched off with a reason)", config.source,
                               owner, runbook, {}))  # fmt: skip
    if TRUST in config.evidence and verifications["policy"] is None:
        rejected, future = batch.rejections_of(TRUST), batch.future_of(TRUST)  # future: reviewed after the time
        if rejected:
            observed, evidence = f"rejected: {rejected[0].field}: {rejected[0].reason}", rejected[0].uri
        elif future and not verifications["policies"]:
            observed = (f"set aside: reviewed {format_timestamp(future[0].observed_at)} is after the evaluation "
                        f"time {format_timestamp(at)} (a policy from the future trusts no key)")  # fmt: skip
            evidence = future[0].uri
        else:
            observed, evidence = f"{verifications['policies']} PluginTrustPolicy files", config.source
        out.append(Finding("error", "plugin trust policy", "trust-policy-present", observed, "exactly one readable "
                           "PluginTrustPolicy", evidence, owner, runbook, {}))  # fmt: skip
    for r in batch.rejections_of(BUNDLES):
        out.append(Finding("error", r.uri.rsplit("/", 1)[-1], "bundle-readable", f"{r.field}: {r.reason}",
                           "a gzip tar bundle with a valid plugin.json", r.uri, owner, runbook, {}))  # fmt: skip
    return out


def _plugin_gate(gate: str):
    def evaluate(batch, config, at, plugin_verifications: dict):
        owner, runbook = config.owner_for(gate, BUNDLES), config.runbook_for(gate)
        found = _evidence_findings(gate, batch, config, plugin_verifications, owner, runbook, at)
        policy = plugin_verifications["policy"]
        if policy is not None:
            found += gate_findings(
                gate, plugin_verifications["results"], policy, owner, runbook, plugin_verifications["policy_uri"]
            )
        results = plugin_verifications["results"]
        refused = sum(bool(v.problems_of(gate)) for v in results)
        enabled = len(policy.enabled) if policy else 0
        return found, f"{enabled} enabled plugin(s); {len(results)} bundle(s) checked, {refused} refused by this gate"

    return evaluate


plugin_signatures_gate = gate_asset(
    SIGNATURES, group=GROUP, owners=OWNERS, evaluate=_plugin_gate(SIGNATURES),
    ins={"plugin_verifications": dg.AssetIn("plugin_verifications")},
)  # fmt: skip
plugin_capabilities_gate = gate_asset(
    CAPABILITY_GATE, group=GROUP, owners=OWNERS, evaluate=_plugin_gate(CAPABILITY_GATE),
    ins={"plugin_verifications": dg.AssetIn("plugin_verifications")},
)  # fmt: skip
