"""Stream D, supportability: the platform's runbook index and the ``supportability`` gate (runbook
references, links, review dates, captured health responses)."""

from collections import Counter

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.resources import Phase8Settings
from phase8_assets.domains.supportability import RunbookIndex, build_index, findings
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import markdown_table

GROUP = "supportability"
OWNERS = ["team:sre"]


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description="The platform's runbooks (under `runbooks:` of phase8.yaml): owner, review date and due date, "
    "what each serves, and which gates, drills and alerts name it.",
)
def runbook_index(settings: Phase8Settings, evidence_files: EvidenceBatch) -> dg.Output:
    config = settings.load()
    index = build_index(evidence_files, config, settings.evaluation_time(config))
    states = Counter(rb.state(index.at) for rb in index.runbooks.values())
    unresolved = [r for r in index.references if not index.resolves(r)]
    headers = ["runbook", "title", "owner", "reviewed", "review_every", "due", "state", "serves", "referenced by"]
    return dg.Output(
        index,
        metadata={
            "evaluated_at": format_timestamp(index.at),
            "folder": index.folder,
            "runbooks": len(index.runbooks),
            "references": len(index.references),
            "unresolved_references": len(unresolved),
            **{f"runbooks_{state.replace('-', '_')}": n for state, n in sorted(states.items())},
            "index": dg.MetadataValue.md(markdown_table(headers, index.rows(), empty="_no runbooks_")),
        },
    )


def supportability_gate(batch: EvidenceBatch, config, at, runbook_index: RunbookIndex):
    return findings(runbook_index, batch, config, at)


supportability_gate_asset = gate_asset(
    "supportability",
    group=GROUP,
    owners=OWNERS,
    evaluate=supportability_gate,
    ins={"runbook_index": dg.AssetIn("runbook_index")},
)
