"""The one exception workflow: every ``kind: Waiver`` document, for gate findings and policy
violations alike, gets a state at the evaluation time.

    requested ──approval (Cedar permits)──► approved ──starts──► active ──expiring_within──► expiring ──► expired
        │                                                                                                   │
        └── refused (Cedar denies, own request, lifetime over the maximum)        renewed (a later one renews it)

Only ``active`` and ``expiring`` exceptions waive findings. Approval is decided by the Cedar
engine with the root's ``AccessPolicy`` documents and the ``Teams`` document as entities; one
rule is the product's own and cannot be switched off: nobody approves their own request.

The resource a policy sees is a ``Phase8::Exception`` with the attributes ``gate`` (its name),
``blocking`` (whether that gate blocks a release), ``owner`` (the exception's owner, as its
requester wrote it), ``gate_owner`` (the gate's owner in phase8.yaml, which the requester does
not choose) and ``requested_by``; ``owner`` and ``gate_owner`` are Team (or User) entities, so a
policy says ``principal in resource.gate_owner``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from phase8_assets.evidence.collect import Waiver
from phase8_assets.evidence.config import ExceptionSettings
from phase8_assets.shared.clock import format_duration, format_timestamp

IN_FORCE = ("active", "expiring")
NO_SELF_APPROVAL = """
forbid (principal, action == Phase8::Action::"approve", resource is Phase8::Exception)
when { resource.requested_by == principal };
"""


@dataclass(frozen=True)
class ExceptionState:
    waiver: Waiver
    state: str  # requested | refused | approved | active | expiring | expired | renewed
    reason: str

    @property
    def in_force(self) -> bool:
        return self.state in IN_FORCE


def _uid(kind: str, ident: str) -> dict:
    return {"__entity": {"type": f"Phase8::{kind}", "id": ident}}


def principal_uid(principal: str) -> dict:
    """``team:name`` is a Team, anything else (an email address) a User."""
    return _uid("Team", principal[5:]) if principal.startswith("team:") else _uid("User", principal)


def team_entities(teams_docs: list[dict]) -> list[dict]:
    """Cedar entities of the ``Teams`` documents: users in their teams and roles."""
    parents: dict[str, list[dict]] = {}
    teams, roles = set(), set()
    for doc in teams_docs:
        for team, spec in doc["teams"].items():
            teams.add(team)
            for member in spec["members"]:
                parents.setdefault(member, []).append(_uid("Team", team))
            for role, members in (spec.get("roles") or {}).items():
                roles.add(role)
                for member in members:
                    parents.setdefault(member, []).append(_uid("Role", role))
    return [
        *({"uid": _uid("User", user), "attrs": {}, "parents": ps} for user, ps in sorted(parents.items())),
        *({"uid": _uid("Team", team), "attrs": {}, "parents": []} for team in sorted(teams)),
        *({"uid": _uid("Role", role), "attrs": {}, "parents": []} for role in sorted(roles)),
    ]


def cedar_decision(
    policies, entities: list[dict], principal: dict, action: str, resource: dict
) -> tuple[bool, list[str]]:
    """The Cedar engine's decision for ``principal`` (an entity uid) doing ``Phase8::Action::action`` on
    ``resource`` (an entity, added to ``entities``), and the errors it met evaluating the policies."""
    import cedarpy

    request = {"principal": principal["__entity"], "action": {"type": "Phase8::Action", "id": action},
               "resource": resource["uid"]["__entity"], "context": {}}  # fmt: skip
    result = cedarpy.is_authorized(request, policies, [*entities, resource])
    return result.allowed, [str(e) for e in result.diagnostics.errors]


def policy_set(texts: list[str]):
    """The Cedar policies of ``texts`` parsed once, for many decisions."""
    import cedarpy

    return cedarpy.PolicySet.from_str("\n".join(texts))


class Approvals:
    """Decides, with Cedar, whether an exception's approver may approve it."""

    def __init__(
        self,
        access_docs: list[dict],
        teams_docs: list[dict],
        blocking: dict[str, bool],
        gate_owner: Callable[[str], str],
    ):
        """``blocking``: each gate's blocking flag (an unknown gate counts as blocking);
        ``gate_owner``: the owner of a gate (``config.owner_for``), ``team:name`` or a user."""
        self.gate_owner = gate_owner
        self.policies = policy_set([*(doc["cedar"] for doc in access_docs), NO_SELF_APPROVAL])
        self.entities = team_entities(teams_docs)
        self.users = {
            e["uid"]["__entity"]["id"] for e in self.entities if e["uid"]["__entity"]["type"] == "Phase8::User"
        }
        self.blocking = blocking
        self.has_policy = bool(access_docs)

    def decide(self, waiver: Waiver) -> tuple[bool, str]:
        if not self.has_policy:
            return False, "no readable AccessPolicy to check the approval against"
        if waiver.approved_by not in self.users:
            return False, f"approver {waiver.approved_by} is in no team of the Teams document"
        if (waiver.requested_by or "").casefold() == waiver.approved_by.casefold():
            # One person however spelt: the policy compares exact ids, and e-mail addresses' case varies.
            return False, f"{waiver.approved_by} approved their own request (requested by {waiver.requested_by})"
        resource = {
            "uid": _uid("Exception", waiver.id),
            "attrs": {
                "gate": waiver.gate,
                "blocking": self.blocking.get(waiver.gate, True),
                "owner": principal_uid(waiver.owner),
                "gate_owner": principal_uid(self.gate_owner(waiver.gate)),
                "requested_by": _uid("User", waiver.requested_by or ""),
            },
            "parents": [],
        }
        allowed, errors = cedar_decision(
            self.policies, self.entities, _uid("User", waiver.approved_by), "approve", resource
        )
        if allowed:
            return True, ""
        if waiver.approved_by == waiver.requested_by:
            return False, f"{waiver.approved_by} approved their own request"
        return False, f"the access policy does not let {waiver.approved_by} approve it" + (
            f" ({'; '.join(errors)})" if errors else ""
        )


def states(
    waivers: list[Waiver], settings: ExceptionSettings, at: datetime, approvals: Approvals | None
) -> list[ExceptionState]:
    """Each exception's state at ``at`` (see the module docstring)."""
    out = []
    for waiver in waivers:
        out.append(_state(waiver, settings, at, approvals))
    # An expired exception is renewed by one that is approved or in force, or by one renewed in
    # turn (a chain); one renewed only by an expired exception, by itself or by a cycle of
    # expired ones stays expired, and is reported as such.
    renewed: dict[str, str] = {}
    live = {s.waiver.id for s in out if s.state in ("approved", *IN_FORCE)}
    changed = True
    while changed:
        changed = False
        for s in out:
            renews = s.waiver.renews
            counts = s.waiver.id in live or (s.state == "expired" and s.waiver.id in renewed)
            if renews and renews != s.waiver.id and renews not in renewed and counts:
                renewed[renews] = s.waiver.id
                changed = True
    return [
        ExceptionState(
            s.waiver,
            "renewed",
            f"renewed by {renewed[s.waiver.id]}; expired {format_timestamp(s.waiver.expires)}",
        )
        if s.state == "expired" and s.waiver.id in renewed
        else s
        for s in out
    ]


def _state(waiver: Waiver, settings: ExceptionSettings, at: datetime, approvals: Approvals | None) -> ExceptionState:
    start = waiver.starts or waiver.approved_at or at
    for when, what in ((waiver.starts, "takes effect"), (waiver.approved_at, "was approved")):
        if when and when >= waiver.expires:  # it can never be in force: say so, not 'approved' or 'expired'
            return ExceptionState(waiver, "refused", f"{what} {format_timestamp(when)}, not before it expires "
                                  f"{format_timestamp(waiver.expires)}")  # fmt: skip
    limit, limit_text = settings.lifetime_for(waiver.gate)
    lifetime = waiver.expires - start
    if lifetime > limit:
        return ExceptionState(
            waiver, "refused", f"asks for {format_duration(lifetime)}; the maximum for {waiver.gate} is {limit_text}"
        )
    if settings.require_approval:
        if not waiver.approved_by:
            return ExceptionState(waiver, "requested", "awaiting approval (approved_by, approved_at)")
        if not waiver.requested_by:
            return ExceptionState(waiver, "requested", "requested_by is missing: an approval needs a named requester")
        if not waiver.approved_at:
            # Without it the lifetime would be measured from the evaluation time and shrink as time
            # passes, until an exception granted for years fits the maximum.
            return ExceptionState(
                waiver,
                "requested",
                "approved_at is missing: an approval needs its date, the exception's lifetime "
                "starts there (or at starts)",
            )
        if waiver.approved_at and waiver.approved_at > at:
            return ExceptionState(
                waiver, "requested", f"approval dated {format_timestamp(waiver.approved_at)}, later than now"
            )
        allowed, why = approvals.decide(waiver) if approvals else (False, "no approval policy")
        if not allowed:
            return ExceptionState(waiver, "refused", why)
    if start > at:
        return ExceptionState(waiver, "approved", f"takes effect {format_timestamp(start)}")
    if waiver.expires <= at:
        return ExceptionState(waiver, "expired", f"expired {format_timestamp(waiver.expires)}")
    left = waiver.expires - at
    if left <= settings.expiring_within:
        return ExceptionState(
            waiver, "expiring", f"expires {format_timestamp(waiver.expires)} ({format_duration(left)} left)"
        )
    return ExceptionState(waiver, "active", f"until {format_timestamp(waiver.expires)}")


def exception_states(batch, config, at: datetime) -> list[ExceptionState]:
    """The states of every exception of an evaluation, approvals decided from its own evidence."""
    from phase8_assets.domains.gates import GATES

    approvals = None
    if config.exceptions.require_approval:
        access = [doc for f in batch.files_of("access_policies") for doc in f.records]
        teams = [doc for f in batch.files_of("teams") for doc in f.records]
        approvals = Approvals(
            access, teams, {name: spec.blocking for name, spec in GATES.items()}, lambda gate: config.owner_for(gate)
        )
    return states(batch.waivers, config.exceptions, at, approvals)


def exception_findings(exceptions: list[ExceptionState], rejections: list, foreign: list[tuple[str, str, str, str]],
                       settings: ExceptionSettings, runbook: str | None, owner: str,
                       config_source: str | None = None, foreign_owner: str | None = None) -> list:  # fmt: skip
    """Gate ``policy_exceptions``: a refused or unreadable exception is an error; requested,
    expiring and expired ones (until someone removes them) are warnings naming their owner; so is a
    root that does not require approval (its evidence: ``config_source``, the phase8.yaml that says
    so), and every Trivy/Snyk ignore entry that rots."""
    from phase8_assets.domains.gates import Finding

    found = []
    if not settings.require_approval:
        found.append(Finding("warning", "exceptions", "approval-required", "require_approval: false",
                             "every exception approved", config_source, owner, runbook,
                             {"reason": settings.reason, "note": "unapproved exceptions waive findings in this root"}))  # fmt: skip
    ids: dict[str, str] = {}
    for state in exceptions:
        w = state.waiver
        if w.id in ids:
            found.append(Finding("error", w.id, "exception-id-unique", f"also used by {ids[w.id]}",
                                 "one id per exception (a renewal gets its own id and names the old one in renews)",
                                 w.source, w.owner, runbook, {"waiver": w.as_details()}))  # fmt: skip
        ids.setdefault(w.id, w.source)
        severity = {"refused": "error", "requested": "warning", "expiring": "warning", "expired": "warning"}.get(
            state.state
        )
        if severity:
            limit = {"refused": "an approved exception within the maximum lifetime",
                     "requested": "approved by someone the access policy allows",
                     "expiring": f"more than {format_duration(settings.expiring_within)} left",
                     "expired": "removed, or renewed by a new exception"}[state.state]  # fmt: skip
            found.append(Finding(severity, f"{w.id} ({w.gate}: {w.subject})", f"exception-{state.state}", state.reason,
                                 limit, w.source, w.owner, runbook, {"waiver": w.as_details(), "state": state.state}))  # fmt: skip
    known = {s.waiver.id for s in exceptions}
    for state in exceptions:
        if state.waiver.renews and state.waiver.renews not in known:
            found.append(Finding("warning", state.waiver.id, "exception-renews", f"renews {state.waiver.renews}, which is not in the root",
                                 "the id of an exception in the root", state.waiver.source, state.waiver.owner, runbook, {}))  # fmt: skip
    for rejection in rejections:
        found.append(Finding("error", rejection.uri, "exception-valid", f"{rejection.field}: {rejection.reason}",
                             "a Waiver with gate, subject, owner, reason, ticket and expires", rejection.uri, owner,
                             runbook, {}))  # fmt: skip
    for subject, problem, fix, uri in foreign:
        # the tools record no owner: whoever the root makes own those files (evidence.foreign_exceptions.owner)
        found.append(Finding("warning", subject, "foreign-exception", problem, fix, uri, foreign_owner or owner,
                             runbook, {}))  # fmt: skip
    return found
