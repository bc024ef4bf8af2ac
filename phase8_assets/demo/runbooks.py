"""The demo root's runbooks under ``docs/ops/``, with the front matter the gates read."""

from __future__ import annotations

from phase8_assets.domains.gates import GATES


def runbook(title: str, owner: str, reviewed: str, review_every: str, serves: list[str], body: str) -> str:
    return (
        f'---\ntitle: "{title}"\nowner: "{owner}"\nreviewed: "{reviewed}"\nreview_every: {review_every}\n'
        f"serves: [{', '.join(serves)}]\n---\n\n# {title}\n\n{body}\n"
    )


def gate_runbook(gate: str, owner: str, symptoms: str, mitigation: str) -> str:
    """A gate's runbook for an operator at 3 a.m.: symptoms, checks with commands, mitigation,
    rollback, escalation."""
    seen = (
        f"The release pipeline exited 1 (blocked) and the gate report names `{gate}`."
        if GATES[gate].blocking
        else f"The gate report shows `{gate}` as `warn` (this gate never blocks)."
    )
    rollback = (
        "Nothing shipped: a blocked release stays on the previous version."
        if GATES[gate].blocking
        else "Nothing to roll back: this gate never holds a release."
    )
    return f"""\
## Symptoms
{seen} {symptoms}

## Checks
```bash
phase8 gate --evidence <root> --out out          # reproduce; every error finding on one line
jq '.gates[] | select(.gate == "{gate}") | .findings[] | {{subject, rule, observed, limit, evidence}}' out/gate-report.json
phase8 validate <the finding's evidence file>    # is the evidence itself readable?
```

## Mitigation
{mitigation}

## Rollback
{rollback} Undo a waiver or a `phase8.yaml` change that caused the finding together with its
owner; never delete evidence.

## Escalation
{owner} (the gate's owner in `phase8.yaml`), then team:platform-reliability, who run phase8."""


RUNBOOKS = {
    "evidence-validity": (
        "Evidence validity",
        "team:platform-reliability",
        """\
A file under the evidence root could not be read by its reader. The finding names the file, the
field and what was expected.""",
        """\
1. Run `phase8 validate <file>` to see the same message locally.
2. Fix the producer (the CI job, drill or export that wrote the file) and re-publish the evidence.
3. If the file is known-bad and the release must go out, add a `kind: Waiver` with an owner,
   a ticket and an expiry; never delete evidence to make the gate pass.""",
    ),
    "evidence-freshness": (
        "Evidence freshness",
        "team:platform-reliability",
        """\
An evidence kind has no file younger than its maximum age (`evidence.<kind>.max_age` in
`phase8.yaml`), measured from the timestamp inside the evidence, or no evidence at all.""",
        """\
1. Re-run the producer (isolation suite, drill, review) so current evidence exists.
2. Check that the producer writes a timestamp with a time zone.
3. Raise `max_age` only with the owning team's agreement.""",
    ),
    "perf-regressions": (
        "Performance regressions",
        "team:platform-reliability",
        """\
A benchmark of the release commit is significantly worse than its baseline (the base branch's
recent runs since the last change point) by more than its rule's relative limit. The finding gives
the effect, the p- and q-values, the baseline window and the candidate's result file. `drift:`
findings compare the release with a frozen anchor (`kind: PerfBaseline`) instead: a creep of small
steps that every per-release comparison let through, with its 95 % bounds.""",
        """\
1. Open the regressions report (`reports/<root-id>/<release>/perf/regressions.html` in PHASE8_HOME,
   linked from the check): history, baseline band, change points and the candidate.
2. Bisect between the baseline's last commit and the release commit; fix, re-run the benchmarks.
3. An intentional regression (a feature that costs time) is accepted with a `kind: Waiver` naming
   the benchmark and the rule; once the release ships, the new level becomes the baseline after
   the next change point.
4. `baseline-history` warnings: the benchmark has too few base-branch runs since its last change;
   they clear as history accumulates.
5. `drift:` errors: bisect the releases since the anchor's commit (the drift chart of the weekly
   report shows where it grew). Accepting the creep is freezing a new anchor
   (`phase8 perf baseline --freeze --out <anchor>`), reviewed like any change to that file.
   `inconclusive` drift: run the benchmarks of the release commit as many more times as the
   finding says (each run its own result file), or interleave candidate and base runs.""",
    ),
    "perf-budgets": (
        "Performance budgets",
        "team:platform-reliability",
        """\
A benchmark of the release commit breaks an absolute budget (`policy/perf-budgets.yaml`), e.g.
`p95 <= 250ms`, in its worst candidate run, has no result for it, or the benchmark tool reports a
failure in a release run (`tool-reported-failure`: an errored benchmark, a non-zero exit, a
`--- FAIL`, a crossed k6 threshold).""",
        """\
1. Check whether the whole series is near the limit (`reports/<root-id>/<release>/perf/regressions.html`)
   or only the candidate moved.
2. Fix and re-run, or agree a new budget with the owner of the rule (a reviewed change to the
   budgets file), or accept the release with a `kind: Waiver` that expires.
3. `not measured` or `tool-reported-failure`: read the run's log in CI. A budgeted benchmark
   renamed or removed on purpose is decided once: narrow its budget, or waive that release.""",
    ),
    "slo-burn-rate": (
        "SLO burn rate",
        "team:sre",
        """\
An SLO burns its error budget fast enough to page: both windows of a page condition (1h and 5m
at 14.4x, or 6h and 30m at 6x, for a 30-day SLO) are above the factor at the evaluation time.
The finding names the SLO, the condition, both burn rates and the owner.""",
        """\
1. Treat it as an incident on the service: the release waits until the burn stops.
2. Check `slo_burn_rates` in the Dagster UI (burn per window) and the service's dashboards.
3. `insufficient-data` warnings: too few requests to judge; check that telemetry still arrives.
4. `insufficient-coverage` warnings: the metrics begin inside the condition's long window, so its
   burn is over the span the data covers (named in the finding), never scaled up; keep more history.
5. `sli-selector` errors: a `good`, `bad` or `total` selector matches no data stream (an attribute
   key or value the data never has, e.g. the pre-1.21 `http.status_code`); the finding lists the
   attribute keys that do occur. Fix the selector in the SLO: zero matched streams is not zero
   errors.
6. `sli-max-age` errors: neither the SLI nor any other metric of its service has a point within
   the `otel_metrics` max age, while other services' metrics still arrive: the service stopped
   exporting (or was renamed). Restore its telemetry; no recent data is not a good burn rate.
7. `sli-consistency` errors: the `good` (or `bad`) selector counted more events than `total` (the
   finding gives both counts): they select different requests, e.g. a `good` without the total's
   route or status filter. Make `good`/`bad` a subset of `total`.""",
    ),
    "error-budget": (
        "Error budget",
        "team:sre",
        """\
An SLO has less error budget left than the release policy's minimum
(`phase8/min-budget-remaining`, default 0 %) over its window; or the metrics cover less of the
window than its minimum (`window-coverage`: `phase8/min-window-coverage`, default 90 %), so the
budget cannot be told; or a selector matches no data stream (`sli-selector`), or counts more
events than `total` (`sli-consistency`); or the SLI's data stopped (`sli-max-age`: no point of it,
nor of any other metric of its service, within the `otel_metrics` max age).""",
        """\
1. Spend the rest of the window on reliability work, as the SLO's error budget policy says.
2. A release that fixes the cause may ship with a `kind: Waiver` naming the SLO, approved by the
   gate's owner in `phase8.yaml` or a release manager, expiring when the window has recovered.
3. `window-coverage`: publish the metrics of the whole window (the finding says since when the data
   runs), or, for a new service, set a lower `phase8/min-window-coverage` on its SLO on purpose.""",
    ),
    "upgrade-preflight": (
        "Upgrade preflight",
        "team:platform-reliability",
        """\
A supported source version cannot reach the release without skipping a required stop, or a
preflight report for the release found a problem: a skipped stop, pending or failed migrations,
too little disk, an old database, a component too far behind, or a failed check. The finding names
the install, its versions and the check.""",
        """\
1. `path-exists` / `legal-hop`: fix the upgrade path (`policy/upgrade-path.yaml`) or the release
   notes: operators must land on every required stop.
2. `migrations-pending`: wait for background migrations to finish on that install, then re-run
   its preflight.
3. `component-reported`: the report left out a component that has a skew rule; re-run `preflight`
   on a version that reports it, or list it as `{"name": ..., "deployed": false}` if the install
   does not run it.
4. Anything else: fix the install, re-run `preflight`, publish the new report.""",
    ),
    "rollback-integrity": (
        "Rollback integrity",
        "team:data-platform",
        """\
The newest rollback drill to the release did not bring back identical data: a table (and tenant)
has different row counts or content checksums after the rollback, or the schema differs, or
there is no current drill, or the drill did not verify a table it is expected to (`tables-covered`:
one the data inventory lists under `tables`, or the previous complete drill verified).""",
        """\
1. Treat the down migration of the release as broken: find what it does to the named table.
2. Fix, run the drill again (upgrade, rollback, compare), publish the new report.
3. `tables-covered`: put the table back in the drill. A table dropped on purpose leaves the
   inventory and is accepted with a Waiver (rule `tables-covered`) until the older drills that
   verified it are out of the evidence root.""",
    ),
    "cost-budgets": (
        "Cost budgets",
        "team:finops",
        """\
A tenant, team or service has spent (or, by its month-end forecast, will spend) more than a
threshold of its monthly budget. This gate warns; cost informs a release, it never blocks one.
It fails (still without blocking) on `scope-selects-cost`: a budget whose tenant, team or service
category matches no cost this month, or only cost in another currency, is not judged at all. It
warns on `account-max-age` when one billing account's cost stopped while the others' is current.""",
        """\
1. Open the FinOps dashboard (`reports/finops/` in PHASE8_HOME): spend by tenant and service,
   the budget burn-down with its forecast, the unallocated share, the top movers.
2. Tell the budget's owner; check `cost_anomalies` for the day the spend jumped.
3. Untagged spend shows as `__unallocated__`: fix the tags at the source.
4. `scope-selects-cost`: the finding lists what the month's cost holds (the currencies of the
   budget's scope, or each scope key's values). Fix the budget's spelling or currency in the
   CostBudgets file, or the export that changed its currency or tags.
5. `newest-delivery-counts`: a billing period was delivered again (a month-to-date snapshot or a
   CUR execution in its own folder); only the newest delivery counts for those days. When the
   finding says both are counted (a tie, or a narrower export beside a broader one), the cost of
   those days may be counted twice: keep one export per scope at the source. Either way, remove or
   archive the older delivery at the source so the warning goes. `one-source-per-account`: a CUR
   2.0 export and a FOCUS export hold the same billing account's cost on the same days (AWS Data
   Exports can deliver both); FOCUS counts, the CUR days are set aside and not counted. Keep one of
   the two exports per account so the warning goes (docs/ops/cost-evidence.md in the repository).
   `corrections-invoiced`: a file holds corrections of earlier billing periods (FOCUS ChargeClass
   Correction: refunds, re-ratings, late charges); they count in the month that invoices them, on its
   first day. Nothing to fix unless the amounts are wrong; tell the owners of the budgets it moves.
6. `one-policy-file`: the paths of `cost_budgets` (or `cost_allocation`) match more than one file
   and only the first is read: merge the budgets (or rules) into one file, or narrow the paths.
7. `account-max-age`: one billing account's cost this month stopped (its last charge day is older
   than the kind's `max_age`) while another account's export is current, so the budgets named in
   the finding lack its cost since. An account closed mid-month needs nothing; otherwise check that
   account's export at the source (its finding names its newest file). `current-cost` on a budget:
   all of its cost this month is such an account's, so its actual and forecast are stale.""",
    ),
    "policy-compliance": (
        "Policy compliance",
        "team:data-governance",
        """\
A dataset of the data inventory breaks a governance rule: records older than the retention
maximum (or a configured retention outside its limits), a deletion run past its SLA or without its
proof, or an access grant the Cedar access policy denies. The finding names the dataset, the
rule, what the inventory shows and the limit.""",
        """\
1. `*.max` / `*.configured` / `*.min`: run the retention job for the dataset, or fix its configured
   retention; a legal hold must be recorded in the inventory (`legal_hold: true`).
2. `deletion.*`: finish the deletion run and publish its proof (deletion report, purge log).
3. `access.*`: revoke the grant, or change `policy/governance/access.yaml` through review.
4. `retention.coverage` / `*.present`: add the missing rule or policy document
   (`retention.contract`: the ODCS data contract, by id or name, the dataset names);
   `retention.rule-matches` (a warning): the rule's data class or jurisdiction selects no dataset,
   so the datasets it meant are judged by another rule or none: fix the spelling, or drop the rule.
5. Accept a violation for a time only with an exception (`kind: Waiver`, `gate: policy_compliance`)
   that names an owner, a ticket and an expiry and is approved by the gate's owner in `phase8.yaml`
   (team:data-governance) or a release manager, whichever team owns the exception; never by the
   person who asked for it. Its `subject` is the finding's: the dataset id, or for a deletion run or an
   access grant `<dataset>/<run id>` or `<dataset>/<principal>` (`globex-messages/DEL-7702`), so
   an exception for one run or grant accepts no later run or new grant of the dataset.""",
    ),
    "policy-exceptions": (
        "Policy exceptions",
        "team:data-governance",
        """\
An exception was refused (its approver may not approve it under the access policy, approved their
own request, or it asks for longer than the maximum lifetime), or an exception file cannot be read.
Warnings name the owner of an exception awaiting approval, expiring or expired, and the ignore
entries of other tools (Trivy, Snyk, Kyverno PolicyExceptions) that would never expire.""",
        """\
1. `exception-refused`: have someone the access policy allows approve it (`approved_by`,
   `approved_at`), or shorten it to the maximum lifetime (`exceptions.max_lifetime`); one that
   starts or was approved only after it expires can never apply: fix its dates. The access policy
   (`policy/governance/access.yaml`) lets a member of the gate's owner team (`phase8.yaml`
   `owners`) or a release manager approve an exception to a blocking gate; the team the exception
   names as its `owner` only one to a warn-level gate (`cost_budgets`).
2. `exception-expiring` / `exception-expired`: fix the finding, or renew with a new document that
   names the old one in `renews:`; remove expired documents once the finding is gone.
3. `foreign-exception`: move the ignore entry to a phase8 Waiver with owner and expiry.""",
    ),
    "tenancy-isolation": (
        "Tenancy isolation",
        "team:tenancy",
        """\
An isolation test (data, events or cache) failed or passed only on rerun, or a (resource ×
dimension) cell of the isolation matrix (`policy/isolation-matrix.yaml`) has no passing result
younger than its maximum age (a skipped test covers nothing), or the results or the matrix could
not be read. The finding names the cell, the test, its tenants and the report.""",
        """\
1. `no-failures` / `no-flaky-pass`: treat it as a cross-tenant leak until proven otherwise. Re-run
   the named test locally against the release build; a rerun that passes does not clear it.
2. `cell-covered` / `result-age`: run the isolation suite for that resource and dimension and publish
   its JUnit report; mark new tests with `@pytest.mark.isolation(...)` so their cell is known.
3. `matrix-present` / `results-readable`: fix the matrix or the report; never delete evidence to pass.
4. A resource whose tests are eventually consistent may set `flaky: warning` in the matrix, with
   the owning team's agreement.""",
    ),
    "drill-evidence": (
        "Chaos drill evidence",
        "team:sre",
        """\
A drill in the drill catalog (`policy/drill-catalog.yaml`) has no passing run inside its cadence,
its latest run deviated or failed, its recovery took longer than its objective, or its runbook
is missing. The finding names the drill, the rule, the journal and the drill's owner.""",
        """\
1. `cadence`: run the drill (`chaos run` / the LitmusChaos workflow) and publish the journal.
2. `drill-outcome`: read the run's evidence report (`reports/drills/` in PHASE8_HOME), fix the
   weakness it found, then run the drill again; an earlier success does not hide a later failure.
   The finding names the journal field that decided: a failed `rollbacks[]` entry means the fault
   may still be in place, so check the service first; a `dry-run` (`chaos run --dry`) never counts.
3. `recovery-objective`: treat as an incident review; change the objective only with the owner.
4. `runbook-present`: write or restore the runbook the catalog names under `docs/ops/`; each
   drill has its own, e.g. [database failover](drill-db-failover.md#recovery).""",
    ),
    "supportability": (
        "Operator supportability",
        "team:sre",
        """\
One of: a gate, drill, SLO alert or budget alert names a runbook that is not in `docs/ops/`
(`runbook-exists`); a runbook links to a file or heading that does not exist (`link-resolves`);
a runbook is past `reviewed` + `review_every` (`review-current`); a captured health response of
the platform breaks the `application/health+json` contract (`health-contract`), reports `fail`
(`health-status`) or is older than the kind's `max_age` (`health-fresh`, each service's capture on
its own, and each check's reading in it; a response without any `checks.*.time` has no known age
and fails too). The finding names the runbook or response file and its owner.""",
        """\
1. `runbook-exists`: write the runbook under the name the finding gives, with front matter
   (`title`, `owner`, `reviewed`, `review_every`, `serves`), or fix the name where it is declared.
2. `link-resolves`: fix the link; an anchor is the heading's text in lower case with spaces as `-`.
3. `review-current`: the owner reads the runbook against the system as it is today, fixes it and
   sets `reviewed` to today's date.
4. `health-contract`: the service answers in draft 01's keys (`details`, `metricValue`): move it to
   `checks` / `observedValue` (see the contract in phase8's `docs/ops/health-openapi.yaml`); a
   Spring Boot Actuator body (`"status": "UP"`, `components`) is not the contract: capture an
   `application/health+json` endpoint instead (the draft's aliases `ok`/`up`, `error`/`down` are fine).
5. `health-status`: treat a `fail` as an incident on that service; evidence must also be fresh
   (see [evidence freshness](evidence-freshness.md#mitigation)).
6. `health-fresh`: capture the service's `/health` again (the job that probes it stopped, or the
   service was retired: then remove its capture). "capture time unknown": the service reports no
   `time` on its checks; make it do so (a file's modification time is never evidence time). "read
   ... ago" on one check of a fresh capture: that component's checker stopped and the service keeps
   serving its last (cached) reading; fix or restart the checker, then capture again.""",
    ),
    "plugin-signatures": (
        "Plugin signatures",
        "team:security",
        """\
A plugin or bot that a tenant enables was refused: unsigned, signed by a key the trust policy
does not list (or revoked, not yet valid, expired), a file added, removed or changed after
signing, an edited MANIFEST, a platform's own signed file list (Grafana MANIFEST.txt) that does
not match the files, an unsafe archive (paths, links, tar limits, paths a case-insensitive disk
unpacks to one file, files anyone may write), a version below the approved one, or the approved
version with other content. The finding names the bundle and
the reason; `phase8 plugin verify BUNDLE --trust policy/plugin-trust.yaml` shows every reason.""",
        """\
1. Never re-sign a bundle you did not build: get a fresh, signed bundle from its publisher.
2. `revoked-key`, `key-expired`: the publisher signs with its new key; add that key to
   `policy/plugin-trust.yaml` after checking its fingerprint out of band.
3. `rollback`, `resigned`: a downgrade or a changed release needs the security team's approval
   (update `approved` in the trust policy), never a silent swap.
4. Until then, disable the plugin for its tenants in the trust policy.""",
    ),
    "plugin-capabilities": (
        "Plugin capabilities",
        "team:security",
        """\
A plugin asks for a capability, or egress to a host, that its signer's trust level does not
allow, or for a permission with no mapping in our vocabulary (including the permissions of the
Slack or Mattermost manifest it ships). Each capability is its own finding. Or the plugin needs a
newer server than the release (`server-version`: its `min_server_version` is above
`release.version`), or `release.version` is not a version (`release-version`).""",
        """\
1. Ask the publisher to drop the capability, or run it with a narrower one.
2. If the capability is needed, review the publisher and move its key to a higher trust level in
   `policy/plugin-trust.yaml` (security team approval), or widen the level on purpose.
3. An unknown permission is refused, not ignored: extend the mapping in
   `docs/security/plugin-signing.md` and the code together.
4. `server-version`: ask the publisher for a build that runs on the release, keep the release's
   previous plugin version, or disable the plugin for its tenants until the server is upgraded.
   `release-version`: set `release.version` in `phase8.yaml` to the release's SemVer.""",
    ),
    "program-completeness": (
        "Program completeness",
        "team:platform-reliability",
        """An item of the Phase 8 program (`program.items` in `phase8.yaml`) has no owner or cadence, its runs
missed the declared cadence (the finding names the newest run and its age), or a whole family of
release evidence (reliability, resilience, governance, supportability) has no item a gate evaluated.
A gate switched off, or an item whose evidence is not configured, warns with the reason.""",
        """1. `item-owner`, `item-cadence`, `item-declared`: declare the item in `program.items` of the root's
   `phase8.yaml` (owner `team:name` of a real team, not a placeholder such as `team:TBD`; family;
   cadence `every-release` or a duration such as `P7D`).
2. `cadence-kept`: run the item's drill, suite or export now (the finding names its evidence kind);
   if the cadence was wrong, change it in `phase8.yaml` with the item's owner.
3. `family-present`: switch the item's gate back on or configure its evidence; a release must carry
   evidence of all four families.
4. Open `reports/program/<root-id>/scorecard.html` under `PHASE8_HOME` for the item-by-item view.""",
    ),
}
