"""Data governance as code: every dataset of the inventory against the retention, deletion and
access policies, rule by rule.

Each evaluation is one rule × one target with an outcome: ``pass``, ``violation``, ``excepted``
(a violation an exception in force accepts) or ``not-applicable``, and why. Nothing passes by
default: a dataset no retention rule covers, a deletion run of a type no SLA covers, a grant
when there is no access policy, or a missing inventory are violations. Access is decided by the
Cedar engine (the ``AccessPolicy`` documents), never by code here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache

from phase8_assets.domains.exceptions import (
    ExceptionState,
    cedar_decision,
    exception_findings,
    exception_states,
    policy_set,
    principal_uid,
    team_entities,
)
from phase8_assets.domains.gates import GATES, Finding, GateResult, errored, glob_match, judge
from phase8_assets.shared.clock import add_duration, format_duration, format_timestamp, parse_duration

OUTCOMES = ("pass", "violation", "excepted", "not-applicable")
# The evidence kinds governance reads (exceptions are the root's waivers).
KINDS = frozenset({"retention_policies", "deletion_policies", "access_policies", "teams", "data_inventory",
                   "data_contracts", "foreign_exceptions"})  # fmt: skip
# The rules that find a kind of document absent, and that kind: such a finding's evidence is where the
# config expects the documents (``evaluate`` knows no config).
PRESENT_RULES = {"inventory.present": "data_inventory", "retention.present": "retention_policies",
                 "deletion.present": "deletion_policies", "access.present": "access_policies"}  # fmt: skip


@dataclass(frozen=True)
class Evaluation:
    rule: str
    target: str
    outcome: str
    observed: str
    limit: str
    reason: str
    evidence: str | None
    owner: str
    tenant: str = ""
    details: dict = field(default_factory=dict)


@dataclass
class Policies:
    """The governance documents of one evaluation, each with the file it came from."""

    retention: list[tuple[dict, str]] = field(default_factory=list)
    contracts: list[tuple[dict, str]] = field(default_factory=list)  # ODCS retention rules
    deletion: list[tuple[dict, str]] = field(default_factory=list)
    access: list[tuple[dict, str]] = field(default_factory=list)
    teams: list[tuple[dict, str]] = field(default_factory=list)
    # Every readable ODCS contract by its id and its name (one without a retention SLA has no rule).
    contract_names: set[str] = field(default_factory=set)

    @classmethod
    def from_batch(cls, batch) -> Policies:
        def docs(kind: str) -> list[tuple[dict, str]]:
            return [(doc, f.uri) for f in batch.files_of(kind) for doc in f.records]

        names = {str(f.summary.get(key)) for f in batch.files_of("data_contracts") for key in ("contract", "name")
                 if f.summary.get(key)}  # fmt: skip
        return cls(
            docs("retention_policies"), docs("data_contracts"), docs("deletion_policies"), docs("access_policies"),
            docs("teams"), names,
        )  # fmt: skip


def inventory_datasets(batch) -> list[tuple[dict, str]]:
    """Every inventoried dataset with the file it is read from. Each DataInventory file may cover
    part of the platform (a region, a cluster, a set of tenants), so every file counts; a dataset
    listed in several files is taken from the newest (by ``generated_at``, then path), as a later
    snapshot supersedes an earlier one. None is dropped because a newer file does not list it."""
    newest: dict[str, tuple[dict, str]] = {}
    for f in sorted(batch.files_of("data_inventory"), key=lambda f: (f.observed_at, f.uri)):
        for ds in f.records[0]["datasets"]:
            newest[ds["id"]] = (ds, f.uri)
    return sorted(newest.values(), key=lambda item: (item[0]["tenant"], item[0]["id"]))


def evaluate(policies: Policies, datasets: list[tuple[dict, str]], at: datetime,
             default_owner: str) -> list[Evaluation]:  # fmt: skip
    """Every rule × target of the inventoried ``datasets`` (each with its file) at ``at``."""
    out: list[Evaluation] = []
    if not datasets:
        return [Evaluation("inventory.present", "data inventory", "violation", "no readable DataInventory",
                           "at least one DataInventory", "the inventory is what the policies are checked against", None,
                           default_owner)]  # fmt: skip
    for kind, found, rule in (("RetentionPolicy", policies.retention, "retention.present"),
                              ("DeletionPolicy", policies.deletion, "deletion.present"),
                              ("AccessPolicy", policies.access, "access.present")):  # fmt: skip
        if not found:
            out.append(Evaluation(rule, "policies", "violation", f"no readable {kind}", f"at least one {kind}",
                                  "without it the datasets cannot be judged", None, default_owner))  # fmt: skip
    access = _Access(policies) if policies.access else None
    for ds, uri in datasets:
        out += _retention(ds, policies, at, uri, default_owner)
        out += _deletion(ds, policies, at, uri, default_owner)
        out += _grants(ds, access, uri, default_owner)
    return out


def _ev(ds: dict, rule: str, outcome: str, observed, limit, reason: str, uri, owner: str, *, of: str = "",
        **details) -> Evaluation:  # fmt: skip
    """An evaluation of ``ds``, or of one deletion run or grant of it (``of``: its id or principal). The
    target names that run or grant (``globex-messages/DEL-7702``), so an exception accepting one run
    or grant does not accept the dataset's next failed run or a new grant of the same action."""
    target = f"{ds['id']}/{of}" if of else ds["id"]
    return Evaluation(rule, target, outcome, str(observed), str(limit), reason, uri, owner, ds["tenant"], details)


def _retention_rules(ds: dict, policies: Policies) -> list[tuple[dict, str, str]]:
    """(rule, owner, source) of every rule that applies: the data class's rule for the dataset's
    jurisdiction (else its ``*`` rule) and the retention of the ODCS contract the dataset names."""
    by_class = []
    for doc, uri in policies.retention:
        for rule in doc["rules"]:
            if rule["data_class"] == ds["data_class"]:
                by_class.append((rule, doc["owner"], uri))
    exact = [r for r in by_class if _jurisdiction(r[0]) == _jurisdiction(ds)]
    rules = exact or [r for r in by_class if _jurisdiction(r[0]) == "*"]
    if ds.get("contract"):  # an ODCS contract is named by its id or its name
        rules += [(r, "", uri) for r, uri in policies.contracts if ds["contract"] in (r["contract"], r.get("name"))]
    return rules


def _jurisdiction(item: dict) -> str:
    """An ISO 3166 code as written by either side: ``eu`` is ``EU``."""
    return str(item.get("jurisdiction", "*")).strip().upper()


def unmatched_rules(policies: Policies, datasets: list[tuple[dict, str]]) -> list[tuple[dict, str, str, str]]:
    """(rule, owner, file, why) of every retention rule whose data class and jurisdiction select no
    inventoried dataset: a misspelt class or jurisdiction (``EEA`` for ``EU``) leaves the datasets
    it meant to the general rule, or to none, without a word."""
    if not datasets:
        return []
    held = {(ds["data_class"], _jurisdiction(ds)) for ds, _ in datasets}
    classes = sorted({c for c, _ in held})
    out = []
    for doc, uri in policies.retention:
        for rule in doc["rules"]:
            where = _jurisdiction(rule)
            if rule["data_class"] not in classes:
                out.append((rule, doc["owner"], uri, f"no dataset has data_class {rule['data_class']!r} "
                                                     f"(classes held: {', '.join(classes)})"))  # fmt: skip
            elif where != "*" and (rule["data_class"], where) not in held:
                places = sorted(j for c, j in held if c == rule["data_class"])
                out.append((rule, doc["owner"], uri, f"no {rule['data_class']} dataset is in jurisdiction "
                                                     f"{rule['jurisdiction']!r} (they are in {', '.join(places)})"))  # fmt: skip
    return out


def _retention(ds: dict, policies: Policies, at: datetime, uri, default_owner: str) -> list[Evaluation]:
    rules = _retention_rules(ds, policies)
    contract = ds.get("contract")
    known = policies.contract_names | {r["contract"] for r, _ in policies.contracts}
    missing = []
    if contract and contract not in known:  # the contract's retention cannot be applied: fail closed
        missing.append(_ev(ds, "retention.contract", "violation", f"names data contract {contract!r}, which no "
                           f"readable data contract has (known: {', '.join(sorted(known)) or 'none'})",
                           "the ODCS contract the dataset implements", "its retention SLA cannot be applied", uri,
                           default_owner))  # fmt: skip
    if not rules:
        where = f"{ds['data_class']} in {ds['jurisdiction']}"
        return [*missing, _ev(ds, "retention.coverage", "violation", f"no retention rule covers {where}",
                              "a RetentionPolicy rule for the data class", "every dataset must have a retention rule",
                              uri, default_owner)]  # fmt: skip
    out = missing
    for rule, owner, source in rules:
        owner = owner or default_owner
        age = at - ds["oldest_record"] if ds["oldest_record"] else None
        if age is None:
            out.append(_ev(ds, f"{rule['id']}.max", "not-applicable", "empty dataset", f"<= {rule['max']}",
                           "no records", uri, owner, policy=source))  # fmt: skip
        elif at <= add_duration(ds["oldest_record"], rule["max"]):  # P1Y: a year on the calendar
            out.append(_ev(ds, f"{rule['id']}.max", "pass", f"oldest record {format_duration(age)} old",
                           f"<= {rule['max']}", "within the maximum", uri, owner, policy=source))  # fmt: skip
        elif ds.get("legal_hold") and rule.get("legal_hold", "suspends_deletion") == "suspends_deletion":
            out.append(_ev(ds, f"{rule['id']}.max", "pass", f"oldest record {format_duration(age)} old, legal hold",
                           f"<= {rule['max']}", "a legal hold suspends deletion", uri, owner, policy=source))  # fmt: skip
        else:
            out.append(_ev(ds, f"{rule['id']}.max", "violation", f"oldest record {format_duration(age)} old "
                           f"({format_timestamp(ds['oldest_record'])})", f"<= {rule['max']}",
                           "records older than the maximum retention are still kept", uri, owner, policy=source))  # fmt: skip
        configured = ds.get("retention")
        if configured:
            too_long = can_exceed(configured, rule["max"])
            out.append(_ev(ds, f"{rule['id']}.configured", "violation" if too_long else "pass",
                           f"configured to keep {configured}", f"<= {rule['max']}",
                           "the platform is configured to keep data longer than allowed" if too_long
                           else "configured within the maximum", uri, owner, policy=source))  # fmt: skip
        if rule.get("min"):
            if not configured:
                out.append(_ev(ds, f"{rule['id']}.min", "violation", "no configured retention in the inventory",
                               f">= {rule['min']}", "the law demands a minimum; the inventory must show it is kept",
                               uri, owner, policy=source))  # fmt: skip
            else:
                too_short = can_exceed(rule["min"], configured)
                out.append(_ev(ds, f"{rule['id']}.min", "violation" if too_short else "pass",
                               f"configured to keep {configured}", f">= {rule['min']}",
                               "kept shorter than the law demands" if too_short else "kept at least the minimum",
                               uri, owner, policy=source))  # fmt: skip
    return out


# Every day of a four-year (leap) cycle: where two durations of different units (P1Y, P12M,
# P365D, P52W) can be told apart.
_CYCLE = tuple(datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=d) for d in range(366 + 3 * 365))


@cache
def can_exceed(longer: str, shorter: str) -> bool:
    """Whether ISO 8601 duration ``longer`` runs past ``shorter`` from some start on the calendar:
    P12M never outlasts P1Y (nor P1Y P12M); P1Y outlasts P365D in a leap year, P1M outlasts P30D
    in a 31-day month. A configured retention must stay within a maximum (and reach a minimum)
    whatever day the record was written."""
    calendar = [_months(d) for d in (longer, shorter)]
    if not any(calendar):  # days, weeks and times only: fixed lengths
        return parse_duration(longer) > parse_duration(shorter)
    whole = [re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?", d.strip().upper()) for d in (longer, shorter)]
    if all(whole):  # years and months only: P1Y is P12M
        long_months, short_months = (int(m[1] or 0) * 12 + int(m[2] or 0) for m in whole)
        return long_months > short_months
    return any(add_duration(s, longer) > add_duration(s, shorter) for s in _CYCLE)


def _months(duration: str) -> bool:
    """Whether ``duration`` counts years or months (before any ``T``)."""
    date_part = duration.upper().split("T", 1)[0]
    return "Y" in date_part or "M" in date_part


def _deletion(ds: dict, policies: Policies, at: datetime, uri, default_owner: str) -> list[Evaluation]:
    slas = {}
    for doc, source in policies.deletion:
        for sla in doc["slas"]:
            current = slas.get(sla["applies_to"])
            if current is None or parse_duration(sla["within"]) < parse_duration(current[0]["within"]):
                slas[sla["applies_to"]] = (sla, doc["owner"], source)
    out = []
    for run in ds.get("deletion_runs") or []:
        subject = f"{run['type']} {run['id']}"
        if run["type"] not in slas:
            out.append(_ev(ds, "deletion.coverage", "violation", f"{subject}: no SLA covers {run['type']}",
                           "a DeletionPolicy SLA", "every deletion run must have an SLA", uri, default_owner,
                           of=run["id"], run=run["id"]))  # fmt: skip
            continue
        sla, owner, source = slas[run["type"]]
        rule, within = f"deletion.{sla['id']}", parse_duration(sla["within"])
        elapsed = (run.get("completed_at") or at) - run["requested_at"]
        limit = f"completed within {sla['within']} with proof {', '.join(sla['proof'])}"
        problem = None
        if run["outcome"] == "failed":
            problem = f"{subject} failed after {format_duration(elapsed)}"
        elif run["outcome"] == "pending" and elapsed > within:
            problem = f"{subject} still pending after {format_duration(elapsed)}"
        elif run["outcome"] == "succeeded" and not run.get("completed_at"):
            problem = f"{subject} succeeded without a completed_at"
        elif run["outcome"] == "succeeded" and elapsed > within:
            problem = f"{subject} took {format_duration(elapsed)}"
        elif run["outcome"] == "succeeded" and set(sla["proof"]) - set(run.get("proof") or []):
            missing = sorted(set(sla["proof"]) - set(run.get("proof") or []))
            problem = f"{subject} published no {', '.join(missing)}"
        if problem:
            out.append(_ev(ds, rule, "violation", problem, limit, "the deletion SLA was not met", uri, owner,
                           of=run["id"], run=run["id"], policy=source))  # fmt: skip
        else:
            state = "pending, within its SLA" if run["outcome"] == "pending" else f"done in {format_duration(elapsed)}"
            out.append(_ev(ds, rule, "pass", f"{subject} {state}", limit, "within the SLA", uri, owner, of=run["id"],
                           run=run["id"], policy=source))  # fmt: skip
    return out


class _Access:
    """Cedar decisions for access grants: principals from ``Teams``, datasets as resources."""

    def __init__(self, policies: Policies):
        self.policies = policy_set([doc["cedar"] for doc, _ in policies.access])
        self.entities = team_entities([doc for doc, _ in policies.teams])
        self.owner = policies.access[0][0]["owner"]
        self.source = policies.access[0][1]

    def decide(self, principal: str, action: str, ds: dict) -> tuple[bool, list[str]]:
        resource = {
            "uid": {"__entity": {"type": "Phase8::Dataset", "id": ds["id"]}},
            "attrs": {"classification": ds["classification"], "data_class": ds["data_class"], "tenant": ds["tenant"]},
            "parents": [],
        }
        entities = self.entities
        if principal.startswith("team:") and not any(e["uid"] == principal_uid(principal) for e in entities):
            entities = [*entities, {"uid": principal_uid(principal), "attrs": {}, "parents": []}]
        return cedar_decision(self.policies, entities, principal_uid(principal), action, resource)


def _grants(ds: dict, access: _Access | None, uri, default_owner: str) -> list[Evaluation]:
    out = []
    for grant in ds.get("access_grants") or []:
        rule, subject = f"access.{grant['action']}", f"{grant['principal']} {grant['action']}"
        limit = f"permitted by the access policy for {ds['classification']} data"
        if access is None:
            out.append(_ev(ds, rule, "violation", f"{subject}: no access policy to judge it", limit,
                           "a grant nobody can justify", uri, default_owner, of=grant["principal"],
                           principal=grant["principal"]))  # fmt: skip
            continue
        allowed, errors = access.decide(grant["principal"], grant["action"], ds)
        out.append(_ev(ds, rule, "pass" if allowed else "violation", f"{subject}: {'permitted' if allowed else 'denied'}",
                       limit, "Cedar permits it" if allowed else "Cedar denies it: the grant must be revoked",
                       uri, access.owner, of=grant["principal"], principal=grant["principal"], policy=access.source,
                       **({"cedar_errors": errors} if errors else {})))  # fmt: skip
    return out


def with_exceptions(evaluations: list[Evaluation], exceptions: list[ExceptionState]) -> list[Evaluation]:
    """Violations an exception in force for gate ``policy_compliance`` accepts become ``excepted``."""
    mine = [s for s in exceptions if s.waiver.gate == "policy_compliance" and s.in_force]
    out = []
    for ev in evaluations:
        state = next(
            (s for s in mine if ev.outcome == "violation" and glob_match(ev.target, s.waiver.subject)
             and glob_match(ev.rule, s.waiver.rule)),
            None,
        )  # fmt: skip
        out.append(
            replace(ev, outcome="excepted", reason=f"{ev.reason}; excepted by {state.waiver.id}") if state else ev
        )
    return out


def foreign_rot(records: list[dict], uri: str, at: datetime) -> list[tuple[str, str, str, str]]:
    """Why each Trivy/Snyk ignore entry or Kyverno PolicyException rots (never expires, an ignored
    key), is stale (expired but still listed) or has no date to check (a Kyverno TTL counted from
    when the cluster first saw it): (subject, problem, what would fix it, file). None of these tools
    records an owner."""
    out = []
    for r in records:
        subject = f"{r['tool']} {r['id']} ({r['where']})"
        if r.get("ttl"):
            out.append((subject, f"expires {r['ttl']} after the cluster first sees it ({r['honoured_key']}): no date "
                        "in the file to check, and no owner",
                        f"write a date in {r['honoured_key']}, or move it to a phase8 Waiver with owner and expiry"))  # fmt: skip
        elif r["ignored_keys"] and not r["expires"]:
            out.append((subject, f"rots: {r['tool']} ignores {', '.join(r['ignored_keys'])}; it never expires and has no owner",
                        f"write {r['honoured_key']}, or move it to a phase8 Waiver with owner and expiry"))  # fmt: skip
        elif not r["expires"]:
            out.append((subject, "rots: no expiry and no owner: it never expires",
                        f"add {r['honoured_key']}, or move it to a phase8 Waiver with owner and expiry"))  # fmt: skip
        elif datetime.fromisoformat(r["expires"]) <= at:
            out.append((subject, f"stale: expired {r['expires'][:10]} ({r['tool']} no longer applies it) but is still listed; no owner",
                        "remove it, or renew it as a phase8 Waiver with owner and expiry"))  # fmt: skip
        else:
            out.append((subject, f"expires {r['expires'][:10]}, but names no owner",
                        "move it to a phase8 Waiver with owner and expiry"))  # fmt: skip
    return [(s, p, fix, uri) for s, p, fix in out]


def foreign_exceptions(batch, at: datetime) -> list[tuple[str, str, str, str]]:
    return [row for f in batch.files_of("foreign_exceptions") for row in foreign_rot(f.records, f.uri, at)]


def compliance_gate(batch, config, at, policy_evaluations: list[Evaluation]):
    """Gate ``policy_compliance``: every violation is an error; an unreadable governance file too
    (the rules it holds cannot be applied)."""
    gate = "policy_compliance"
    runbook = config.runbook_for(gate)
    found = [
        Finding("error", r.uri, "governance-file-readable", f"{r.field}: {r.reason}", f"a valid {r.kind} file",
                r.uri, config.owner_for(gate, r.kind), runbook, {})
        for r in batch.rejections
        if r.kind in KINDS
    ]  # fmt: skip
    found += [
        Finding("error", e.target, e.rule, e.observed + _set_aside(batch, e.rule, at), e.limit,
                e.evidence or _future_uri(batch, e.rule) or config.paths_of(PRESENT_RULES.get(e.rule, "data_inventory")),
                e.owner, runbook, {"tenant": e.tenant, "reason": e.reason, **e.details,
                                   **({"kind": PRESENT_RULES[e.rule]} if e.rule in PRESENT_RULES else {})})
        for e in policy_evaluations
        if e.outcome == "violation"
    ]  # fmt: skip
    found += [
        Finding("warning", f"{rule['id']} ({rule['data_class']}, {rule.get('jurisdiction', '*')})",
                "retention.rule-matches", why, "a retention rule selects at least one inventoried dataset", uri,
                owner, runbook, {"reason": "its data class or jurisdiction may be misspelt: the datasets it meant "
                                           "are judged by another rule, or by none"})
        for rule, owner, uri, why in unmatched_rules(Policies.from_batch(batch), inventory_datasets(batch))
    ]  # fmt: skip
    found += _stale_inventories(batch, config, at, {e.evidence for e in policy_evaluations}, runbook)
    passed = sum(e.outcome == "pass" for e in policy_evaluations)
    return found, f"{len(policy_evaluations)} rule evaluation(s), {passed} pass"


def _set_aside(batch, rule: str, at: datetime) -> str:
    """Why a kind a ``*.present`` rule finds absent is absent though its file is there: dated after
    the evaluation time, it was set aside (an empty string for any other rule)."""
    future = batch.future_of(PRESENT_RULES[rule]) if rule in PRESENT_RULES else []
    if not future:
        return ""
    f = future[0]
    return (f"; the file is set aside: its {f.timestamp_field} {format_timestamp(f.observed_at)} is after the "
            f"evaluation time {format_timestamp(at)}")  # fmt: skip


def _future_uri(batch, rule: str) -> str | None:
    future = batch.future_of(PRESENT_RULES[rule]) if rule in PRESENT_RULES else []
    return future[0].uri if future else None


def _stale_inventories(batch, config, at: datetime, used: set, runbook: str) -> list[Finding]:
    """An inventory file older than the kind's maximum age whose datasets are still judged (no newer
    file lists them): freshness is decided on the newest file, but here every file counts."""
    kind = config.evidence.get("data_inventory")
    if kind is None:
        return []
    return [
        Finding("error", f.uri, "inventory-fresh", f"generated_at {format_timestamp(f.observed_at)}, "
                f"{format_duration(at - f.observed_at)} old", f"{kind.max_age_text} ({format_duration(kind.max_age)})",
                f.uri, config.owner_for("policy_compliance", "data_inventory"), runbook,
                {"reason": "its datasets are judged as they were then; no newer inventory lists them"})
        for f in batch.files_of("data_inventory")
        if f.uri in used and at - f.observed_at > kind.max_age
    ]  # fmt: skip


def exceptions_gate(batch, config, at, policy_exceptions: dict):
    """Gate ``policy_exceptions`` over the states of every exception of the root."""
    from phase8_assets.evidence.collect import WAIVER_KIND

    gate = "policy_exceptions"
    found = exception_findings(
        policy_exceptions["states"], batch.rejections_of(WAIVER_KIND), policy_exceptions["foreign"],
        config.exceptions, config.runbook_for(gate), config.owner_for(gate), config.source,
        config.owner_for(gate, "foreign_exceptions"),
    )  # fmt: skip
    in_force = sum(s.in_force for s in policy_exceptions["states"])
    return found, f"{len(policy_exceptions['states'])} exception(s), {in_force} in force"


def governance_results(batch, config, at: datetime) -> list[GateResult]:
    """Both governance gates without Dagster (``phase8 policy check``), decided as ``release_gate`` does."""
    states = exception_states(batch, config, at)
    datasets = inventory_datasets(batch)
    results = []
    for name, evaluate_gate, inputs in (
        ("policy_compliance", compliance_gate,
         lambda: {"policy_evaluations": evaluate(Policies.from_batch(batch), datasets, at,
                                                 config.owner_for("policy_compliance"))}),
        ("policy_exceptions", exceptions_gate,
         lambda: {"policy_exceptions": {"states": states, "foreign": foreign_exceptions(batch, at)}}),
    ):  # fmt: skip
        try:
            results.append(judge(GATES[name], batch, config, at, evaluate_gate, states, **inputs()))
        except Exception as exc:  # as in release_gate: a gate that cannot be evaluated is `error`
            results.append(errored(GATES[name], f"{type(exc).__name__}: {exc}", config))
    return results
