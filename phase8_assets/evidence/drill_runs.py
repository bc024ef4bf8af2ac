"""One drill run, whatever tool recorded it: the shape both drill readers return.

A Chaos Toolkit journal is one run; a LitmusChaos ``ChaosResult`` file may hold several. The
domain logic only ever sees ``DrillRun``: title and tags to match it to the catalog, outcome,
timings and the activities (already redacted) for the evidence report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# What "the hypothesis held" means for a run: True / False / None (not verified).
OUTCOMES = ("passed", "unverified", "dry-run", "deviated", "failed", "aborted", "interrupted", "stopped", "awaited")


@dataclass(frozen=True)
class DrillActivity:
    phase: str  # before | method | during | after | rollback | probe (Litmus)
    seq: int
    type: str  # action | probe | pause
    name: str
    status: str  # succeeded | failed | skipped | ...
    start: datetime | None = None
    end: datetime | None = None
    duration_s: float | None = None
    tolerance_met: bool | None = None
    detail: str = ""  # the exception's last line, or a probe's verdict; redacted
    # Why an activity the tool recorded "succeeded" did not succeed (a process action's non-zero exit,
    # an HTTP action's 4xx/5xx: chaoslib returns those as output and only logs a warning); else "".
    failure: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded" and not self.failure


@dataclass(frozen=True)
class DrillRun:
    tool: str  # chaostoolkit | litmus
    title: str
    tags: tuple[str, ...]
    status: str  # the tool's own status word, as written
    outcome: str  # one of OUTCOMES
    deviated: bool
    started_at: datetime | None
    ended_at: datetime | None
    hypothesis_before: bool | None
    hypothesis_after: bool | None
    recovery_s: float | None
    recovery_note: str
    outcome_note: str = ""  # the field that decided the outcome and what was expected there
    description: str = ""
    environment: str | None = None
    index: int = 0  # position in its file (Litmus lists hold several results)
    activities: tuple[DrillActivity, ...] = field(default_factory=tuple)
    extra: dict = field(default_factory=dict)  # tool-specific, redacted (e.g. probeSuccessPercentage)

    @property
    def qualifies(self) -> bool:
        """A run that counts as evidence: a real run, completed, the fault injected and rolled back,
        hypothesis held before, during and after, not deviated."""
        return self.outcome == "passed"


def environment_of(tags: list[str] | tuple[str, ...], labels: dict | None = None) -> str | None:
    """``env:<name>`` / ``environment:<name>`` tags, or an ``env``/``environment`` label."""
    for tag in tags:
        key, sep, value = str(tag).partition(":")
        if sep and key.strip().lower() in ("env", "environment") and value.strip():
            return value.strip()
    for key in ("environment", "env"):
        if labels and str(labels.get(key) or "").strip():
            return str(labels[key]).strip()
    return None
