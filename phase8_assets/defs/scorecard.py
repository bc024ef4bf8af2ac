"""The program scorecard's files under ``reports/program/<root-id>/``.

``phase8_program`` runs before the gates of its run (they stay leaves), so it writes what it computed
(``scorecard.json``, stamped with the run) and a scorecard with the statuses recorded before the run;
the step that completes the gate run renders it again with the run's own statuses. Only a scorecard
stamped with a run is ever shown as that run's."""

import json
from pathlib import Path

from phase8_assets.domains.gate_report import root_id
from phase8_assets.domains.program import SCORECARD_KIND, SCORECARD_TITLE, scorecard_sections
from phase8_assets.shared.reports import Section, render_markdown, write_html, write_text

DATA_FILE = "scorecard.json"


def scorecard_folder(reports_dir: Path, roots: list[str]) -> Path:
    """Where the scorecard of the root (the first of ``roots``) lives under the reports folder."""
    return reports_dir / "program" / root_id(roots[0])


def write_scorecard(folder: Path, card: dict, report: dict | None = None) -> list[Path]:
    """``scorecard.html`` and ``scorecard.md`` of ``card``, with the statuses of ``report`` when given."""
    subtitle, sections = scorecard_sections(card, report)
    markdown = render_markdown(SCORECARD_TITLE, [s for s in sections if s.figure is None], subtitle)
    return [
        write_html(folder / "scorecard.html", SCORECARD_TITLE, sections, subtitle),
        write_text(folder / "scorecard.md", markdown),
    ]


def save_card(folder: Path, card: dict) -> Path:
    return write_text(folder / DATA_FILE, json.dumps(card, indent=1, sort_keys=True) + "\n")


def card_of_run(folder: Path, run_id: str) -> dict | None:
    """The scorecard data ``phase8_program`` wrote in run ``run_id``; None when the folder holds
    another run's (the asset failed or did not run in this one), or none, or an unreadable file."""
    try:
        card = json.loads((folder / DATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(card, dict) or card.get("kind") != SCORECARD_KIND or card.get("run_id") != run_id:
        return None
    return card


def complete_scorecard(reports_dir: Path, roots: list[str], report: dict) -> list[Path]:
    """Render the scorecard again with the statuses of the completed run ``report``, if
    ``phase8_program`` computed it in that run; nothing otherwise."""
    folder = scorecard_folder(reports_dir, roots)
    card = card_of_run(folder, report["run_id"])
    return write_scorecard(folder, card, report) if card is not None else []


def scorecard_of_run(folder: Path, run_id: str, reason: str) -> str:
    """The Markdown scorecard of run ``run_id`` (for a CI summary): the one stamped with the run, or,
    when ``phase8_program`` did not complete in it (``reason``), a page saying so; never an earlier
    run's scorecard."""
    if card_of_run(folder, run_id) is not None:
        return (folder / "scorecard.md").read_text(encoding="utf-8")
    return render_markdown(
        SCORECARD_TITLE,
        [
            Section(
                "No scorecard for this run",
                f"The `phase8_program` asset did not complete in run {run_id} ({reason}); the "
                "`program_completeness` gate of the gate report says why. An earlier run's scorecard is never "
                "shown in its place.",
            )
        ],
        f"run {run_id}",
    )
