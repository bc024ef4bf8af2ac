"""The demo root's ``phase8.yaml``: a fictitious collaboration server's release, tenants and evidence kinds."""

from __future__ import annotations

from datetime import UTC, datetime

from phase8_assets.shared.clock import format_timestamp

EVALUATION_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TENANTS = ["acme", "globex", "initech"]
RELEASE = {
    "version": "10.4.0",
    "commit": "4f2c9e1a7b3d5c8e0f1a2b3c4d5e6f7a8b9c0d1e",
    "base_branch": "main",
    "environment": "production",
}

CONFIG = f"""\
# Demo evidence for a fictitious self-hosted collaboration server ("Chatterbox").
# The evaluation time is pinned so the verdict is the same on any day.
apiVersion: phase8/v1
kind: EvidenceConfig
release:
  version: "{RELEASE["version"]}"
  commit: "{RELEASE["commit"]}"
  base_branch: {RELEASE["base_branch"]}
  environment: {RELEASE["environment"]}
evaluation_time: "{format_timestamp(EVALUATION_TIME)}"
tenants: [{", ".join(TENANTS)}]
owners:
  default: team:platform-reliability
  evidence_validity: team:platform-reliability
  evidence_freshness: team:platform-reliability
  drill_evidence: team:sre
  perf_budgets: team:platform-reliability
  perf_regressions: team:platform-reliability
  slo_burn_rate: team:sre
  error_budget: team:sre
  upgrade_preflight: team:platform-reliability
  rollback_integrity: team:data-platform
  cost_budgets: team:finops
  supportability: team:sre
  tenancy_isolation: team:tenancy
  plugin_signatures: team:security
  plugin_capabilities: team:security
  program_completeness: team:platform-reliability
  policy_compliance: team:data-governance
  policy_exceptions: team:data-governance
runbooks: docs/ops
# The Phase 8 program: who owns each item, its family of release evidence, how often its runs happen.
program:
  items:
    performance: {{owner: team:platform-reliability, family: reliability, cadence: every-release}}
    chaos_drills: {{owner: team:sre, family: resilience, cadence: P1M}}
    upgrade_safety: {{owner: team:platform-reliability, family: resilience, cadence: every-release}}
    finops: {{owner: team:finops, family: governance, cadence: P2D}}  # daily exports land a day later
    governance: {{owner: team:data-governance, family: governance, cadence: P7D}}
    plugin_security: {{owner: team:security, family: governance, cadence: every-release}}
    tenancy_isolation: {{owner: team:tenancy, family: reliability, cadence: every-release}}
    supportability: {{owner: team:sre, family: supportability, cadence: P1D}}
evidence:
  isolation_results:
    paths: ["evidence/isolation/*.xml"]
    max_age: P7D
    owner: team:tenancy
  isolation_matrix:
    paths: ["policy/isolation-matrix.yaml"]
    max_age: P365D
    owner: team:tenancy
  drill_journals:
    paths: ["evidence/drills/**/*.json"]
    max_age: P35D
    owner: team:sre
  chaos_results:
    paths: ["evidence/drills/litmus/*.yaml"]
    max_age: P35D
    owner: team:sre
  drill_catalog:
    paths: ["policy/drill-catalog.yaml"]
    max_age: P365D
    owner: team:sre
  benchmarks:
    paths: ["evidence/bench/**/*"]
    max_age: P14D
    owner: team:platform-reliability
  perf_budgets:
    paths: ["policy/perf-budgets.yaml"]
    max_age: P365D
    owner: team:platform-reliability
  perf_baselines:
    paths: ["policy/perf-baseline.yaml"]
    max_age: P365D
    owner: team:platform-reliability
  slo_definitions:
    paths: ["policy/slo/*.yaml"]
    max_age: P365D
    owner: team:sre
  otel_metrics:
    paths: ["evidence/otel/*.jsonl"]
    max_age: PT2H
    owner: team:sre
  cost_exports:
    paths: ["evidence/cost/*.csv.gz"]
    max_age: P3D
    owner: team:finops
  cost_allocation:
    paths: ["policy/cost-allocation.yaml"]
    max_age: P365D
    owner: team:finops
  cost_budgets:
    paths: ["policy/cost-budgets.yaml"]
    max_age: P365D
    owner: team:finops
  upgrade_path:
    paths: ["policy/upgrade-path.yaml"]
    max_age: P365D
    owner: team:platform-reliability
  preflight_reports:
    paths: ["evidence/upgrade/preflight/*.json"]
    max_age: P14D
    owner: team:platform-reliability
  rollback_reports:
    paths: ["evidence/upgrade/rollback/*.json"]
    max_age: P30D
    owner: team:data-platform
  plugin_bundles:
    paths: ["evidence/plugins/*.tar.gz"]
    max_age: P365D
    owner: team:security
  plugin_trust:
    paths: ["policy/plugin-trust.yaml"]
    max_age: P365D
    owner: team:security
  runbooks:
    paths: ["docs/ops/*.md"]
    max_age: P180D
    owner: team:sre
  health_responses:
    paths: ["evidence/health/*.json"]
    max_age: P1D
    owner: team:sre
  retention_policies:
    paths: ["policy/governance/retention.yaml"]
    max_age: P365D
    owner: team:data-governance
  deletion_policies:
    paths: ["policy/governance/deletion.yaml"]
    max_age: P365D
    owner: team:data-governance
  access_policies:
    paths: ["policy/governance/access.yaml"]
    max_age: P365D
    owner: team:data-governance
  teams:
    paths: ["policy/governance/teams.yaml"]
    max_age: P180D
    owner: team:data-governance
  data_inventory:
    paths: ["evidence/governance/inventory.json"]
    max_age: P7D
    owner: team:data-governance
waivers: ["waivers/*.yaml"]
exceptions:
  max_lifetime: P90D
  expiring_within: P14D
limits:
  max_file_bytes: 16777216
  read_timeout_seconds: 30
"""
