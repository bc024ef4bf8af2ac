"""The plugin gates in release_gate: a root without the new evidence fails closed on it, a switched-off
gate says why, an unreadable bundle fails the plugin gates as well as evidence_validity, a Slack
manifest's request URLs are egress."""

import json
import shutil

import pytest

from phase8_assets.demo.plugins import plugin_files, signed
from phase8_assets.evidence.plugins import write_bundle
from phase8_assets_tests.conftest import DATA, gate_report

pytestmark = pytest.mark.slow

CONFIG = """\
apiVersion: phase8/v1
kind: EvidenceConfig
release: {version: "10.4.0", commit: "4f2c9e1a"}
evaluation_time: "2026-11-20T12:00:00Z"
evidence:
"""


def plugin_gates(report):
    return {g["gate"]: g for g in report["gates"] if g["gate"].startswith("plugin_")}


def test_a_root_without_plugin_evidence_fails_closed_unless_switched_off(tmp_path, home):
    root = tmp_path / "root"
    (root / "plugins").mkdir(parents=True)
    (root / "plugins/broken.tar.gz").write_bytes(b"not a gzip stream")
    (root / "phase8.yaml").write_text(CONFIG + '  plugin_bundles: {paths: ["plugins/*.tar.gz"], max_age: P365D}\n')
    gates = plugin_gates(gate_report([root], home))
    for name in ("plugin_signatures", "plugin_capabilities"):
        assert gates[name]["status"] == "fail"
        rules = sorted((f["rule"], f["subject"]) for f in gates[name]["findings"])
        # the one bundle is unreadable, so the kind has no usable file either (the gate's own evidence)
        assert rules == [
            ("bundle-readable", "broken.tar.gz"),
            ("evidence-configured", "plugin_trust"),
            ("evidence-present", "plugin_bundles"),
        ]
        configured = next(f for f in gates[name]["findings"] if f["rule"] == "evidence-configured")
        assert configured["evidence"].endswith("phase8.yaml") and "switched off" in configured["limit"]

    (root / "phase8.yaml").write_text(
        CONFIG + '  plugin_bundles: {paths: ["plugins/*.tar.gz"], max_age: P365D}\ngates:\n'
        "  plugin_signatures: {enabled: false, reason: plugins are not offered before 11.0 (SEC-12)}\n"
        "  plugin_capabilities: {enabled: false, reason: plugins are not offered before 11.0 (SEC-12)}\n"
    )
    gates = plugin_gates(gate_report([root], home))
    assert {g["status"] for g in gates.values()} == {"skipped"}
    assert all("SEC-12" in g["summary"] for g in gates.values())


def test_a_slack_manifest_sending_events_to_another_host_fails_plugin_capabilities(tmp_path, home):
    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    bot = "com.standuplabs.standup-bot"
    files = plugin_files(bot, "3.0.2")  # a newer version, validly signed by the publisher's verified key
    manifest = json.loads(files["manifest.json"])
    manifest["settings"] |= {"socket_mode_enabled": False,
                             "event_subscriptions": {"request_url": "https://collector.evil.example/slack/events"}}  # fmt: skip
    files["manifest.json"] = json.dumps(manifest).encode()
    (root / f"evidence/plugins/{bot}-3.0.2.tar.gz").write_bytes(write_bundle(signed(files, 8, "standuplabs-2026")))
    gates = plugin_gates(gate_report([root], home))
    assert gates["plugin_signatures"]["status"] == "pass"
    assert gates["plugin_capabilities"]["status"] == "fail"
    (finding,) = gates["plugin_capabilities"]["findings"]
    assert (finding["subject"], finding["rule"]) == (f"{bot} 3.0.2", "egress-not-allowed")
    assert finding["observed"] == "egress to collector.evil.example"


def test_a_plugin_needing_a_newer_server_than_the_release_fails_plugin_capabilities(tmp_path, home):
    """Mattermost compares a plugin's min_server_version with its own version before it starts the
    plugin: one that needs a newer server than the release stops working after the upgrade."""
    root = tmp_path / "root"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
    github = "com.octo.github"
    files = plugin_files(github, "0.9.2")  # a newer version, validly signed by the publisher's verified key
    manifest = json.loads(files["mattermost/plugin.json"])
    files["mattermost/plugin.json"] = json.dumps({**manifest, "min_server_version": "10.5.0"}).encode()
    (root / f"evidence/plugins/{github}-0.9.2.tar.gz").write_bytes(write_bundle(signed(files, 8, "octo-2026")))
    gates = plugin_gates(gate_report([root], home))
    assert gates["plugin_signatures"]["status"] == "pass"
    (finding,) = gates["plugin_capabilities"]["findings"]
    assert (finding["subject"], finding["rule"]) == (f"{github} 0.9.2", "server-version")
    assert finding["observed"] == "min_server_version of mattermost/plugin.json 10.5.0: the plugin needs a newer server"
    assert finding["limit"] == "at most the release 10.4.0 (release.version)"

    # a release version nothing can be compared with is a finding, not a silent pass
    config = (root / "phase8.yaml").read_text()
    (root / "phase8.yaml").write_text(config.replace('version: "10.4.0"', 'version: "10.4"'))
    (root / f"evidence/plugins/{github}-0.9.2.tar.gz").unlink()
    gates = plugin_gates(gate_report([root], home))
    assert gates["plugin_signatures"]["status"] == "pass"
    (finding,) = gates["plugin_capabilities"]["findings"]
    assert (finding["subject"], finding["rule"]) == ("release", "release-version")
    assert finding["evidence"].endswith("phase8.yaml")
    assert "got '10.4'" in finding["observed"]


def test_a_trust_policy_reviewed_after_the_evaluation_time_is_named_as_set_aside_not_counted_as_none(tmp_path):
    """A future-dated trust policy is set aside; the finding said '0 PluginTrustPolicy files' with
    phase8.yaml as its evidence, while the file was there. It still fails, naming the file and why."""
    from datetime import UTC, datetime, timedelta

    from phase8_assets.defs.plugins import TRUST, _evidence_findings
    from phase8_assets.evidence import readers
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.config import load_config

    root = tmp_path / "root"
    shutil.copytree(DATA, root)
    trust = root / "policy/plugin-trust.yaml"
    trust.write_text(trust.read_text().replace('reviewed: "2026-11-02"', 'reviewed: "2026-12-01"'))
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    config = load_config([str(root)], set(readers()))
    batch = collect(config, kinds={TRUST})
    batch.set_aside_future(at, timedelta(minutes=5))
    [present] = _evidence_findings("plugin_signatures", batch, config, {"policy": None, "policies": 0}, "team:x",
                                   "rb.md", at)  # fmt: skip
    assert present.rule == "trust-policy-present" and present.evidence == str(trust.resolve())
    assert present.observed.startswith("set aside: reviewed 2026-12-01T00:00:00Z is after the evaluation time")
