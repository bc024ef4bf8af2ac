"""Bundle reading, the canonical MANIFEST, reproducible archives, and other platforms' real manifests."""

import base64
import gzip
import hashlib
import json
import os
import unicodedata

import pytest

from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.plugins import (
    BundleLimits,
    generate_key,
    grafana_files,
    key_id,
    load_contents,
    manifest_for,
    parse_manifest,
    platform_manifest,
    read_bundle_bytes,
    read_bundle_path,
    read_trust,
    sign_manifest,
    signature_valid,
    write_bundle,
)
from phase8_assets_tests.conftest import DATA

KEY = generate_key(hashlib.sha256(b"evidence tests").digest())
FILES = {"plugin.json": b"{}", "server/main.go": b"package main\n", "caf\u00e9/read me.txt": b"x\n"}


def test_key_id_is_the_start_of_the_sha256_of_the_public_key_der():
    from cryptography.hazmat.primitives import serialization

    der = KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_id(KEY.public_key()) == hashlib.sha256(der).hexdigest()[:16] and len(der) == 44


def test_harmless_differences_in_the_manifest_keep_the_signature_valid():
    manifest = manifest_for(FILES)
    raw = base64.b64decode(sign_manifest(KEY, manifest).split()[2])
    windows = manifest.decode().replace("/", "\\").replace("\n", "\r\n").encode()
    nfd = unicodedata.normalize("NFD", manifest.decode()).encode()
    shuffled = b"".join(reversed(manifest.splitlines(keepends=True)))
    upper_hex = b"\xef\xbb\xbf" + b"".join(line[:64].upper() + line[64:] for line in manifest.splitlines(keepends=True))
    for variant in (manifest, windows, nfd, shuffled, upper_hex):
        assert signature_valid(KEY.public_key(), variant, raw)
    edited = manifest.replace(manifest[:1], b"0" if manifest[:1] != b"0" else b"1", 1)
    assert not signature_valid(KEY.public_key(), edited, raw)


def test_manifest_lines_with_dot_dot_or_absolute_paths_are_invalid():
    for line in (b"%s  ../x\n", b"%s  /etc/passwd\n", b"%s  C:\\x\n"):
        with pytest.raises(ValueError):
            parse_manifest(line % (b"a" * 64))
    assert parse_manifest(b"\n%s  ./a\\b.txt\r\n" % (b"A" * 64)) == {"a/b.txt": "a" * 64}


def test_archives_are_reproducible():
    one, two = write_bundle(FILES), write_bundle(dict(reversed(FILES.items())))
    assert one == two
    assert one[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert gzip.decompress(one).startswith("caf\u00e9/read me.txt".encode())  # sorted by path


def test_every_committed_demo_bundle_reads_and_is_signed():
    bundles = sorted((DATA / "evidence/plugins").glob("*.tar.gz"))
    assert len(bundles) == 6
    for path in bundles:
        bundle = read_bundle_bytes(path.read_bytes(), path.name)
        assert bundle.signature and bundle.manifest and not bundle.refusals


def test_folder_bundles_refuse_symlinks_leaving_them(tmp_path):
    (tmp_path / "b").mkdir()
    for name, data in FILES.items():
        (tmp_path / "b" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "b" / name).write_bytes(data)
    os.symlink("/etc/passwd", tmp_path / "b" / "passwd")
    bundle = read_bundle_path(tmp_path / "b")
    assert [r.reason for r in bundle.refusals] == ["symlink"] and not bundle.files


def test_limits_come_from_the_headers(tmp_path):
    data = write_bundle({**FILES, "a.bin": b"1" * 100, "b.bin": b"2" * 100})
    assert [r.reason for r in read_bundle_bytes(data, "x", BundleLimits(max_files=3)).refusals] == ["too-many-files"]
    assert [r.reason for r in read_bundle_bytes(data, "x", BundleLimits(max_file_bytes=99)).refusals] == [
        "file-too-large"
    ]
    assert [r.reason for r in read_bundle_bytes(data, "x", BundleLimits(max_total_bytes=150)).refusals] == [
        "bundle-too-large"
    ]


def test_trust_policy_errors_name_the_field():
    text = (DATA / "policy/plugin-trust.yaml").read_text()
    policy = read_trust(text.encode(), "trust.yaml").records[0]
    assert len(policy.keys) == 6 and policy.tenants_of("org.giphy.giphy") == ["acme", "initech"]
    first = next(iter(policy.keys))
    with pytest.raises(EvidenceError) as wrong_id:
        read_trust(text.replace(first, "0123456789abcdef", 1).encode(), "trust.yaml")
    assert wrong_id.value.field == "keys[0].key_id"
    with pytest.raises(EvidenceError) as unknown:
        read_trust(
            text.replace("[post:messages, commands, ui:extend, act_as_bot]", "[post:messages, fly]").encode(), "t"
        )
    assert unknown.value.field == "levels.community.capabilities[1]"
    with pytest.raises(EvidenceError) as missing:
        read_trust(text.replace("  private:\n", "  privat:\n").encode(), "t")
    assert missing.value.field == "levels"


def test_a_review_date_is_no_zone_warning_a_time_without_a_zone_is():
    """``reviewed: "2026-11-02"`` is a date, as every policy kind's ``reviewed`` may be; the demo's
    trust policy warned "has no time zone" on every run (the other policy kinds never did)."""
    text = (DATA / "policy/plugin-trust.yaml").read_text()
    assert 'reviewed: "2026-11-02"' in text
    assert read_trust(text.encode(), "trust.yaml").warnings == []
    timed = text.replace('reviewed: "2026-11-02"', 'reviewed: "2026-11-02T09:00:00"')
    assert read_trust(timed.encode(), "t").warnings == [
        "reviewed: '2026-11-02T09:00:00' has no time zone; taken as UTC"
    ]


@pytest.mark.realdata
def test_real_platform_manifests_map_onto_our_capabilities(real_samples):
    plugins = real_samples / "plugins"

    def mapped(name):
        manifest = platform_manifest((plugins / name).read_bytes(), name)
        return manifest.format, sorted({ours for _, ours in manifest.permissions if ours}), manifest.egress

    assert mapped("slack_bolt-js-starter-template_manifest.json") == (
        "slack",
        ["commands", "post:messages", "read:messages"],
        (),
    )
    assert mapped("slack_bolt-python-starter-template_manifest.json") == ("slack", ["commands", "post:messages"], ())
    # Both starters run in Socket Mode and list no request URL: no egress. One they listed would count.
    js = json.loads((plugins / "slack_bolt-js-starter-template_manifest.json").read_bytes())
    assert js["settings"]["socket_mode_enabled"] is True
    js["settings"]["event_subscriptions"]["request_url"] = "https://bolt.example.com/slack/events"
    assert platform_manifest(json.dumps(js).encode(), "manifest.json").egress == ("bolt.example.com",)
    assert mapped("mattermost_app_hello-lifecycle_manifest.json") == (
        "mattermost-app",
        ["act_as_bot"],
        ("mattermost-apps-golang-lifecycle",),
    )
    assert mapped("mattermost_app_hello-serverless_manifest.json")[1] == ["act_as_bot", "commands"]
    assert mapped("mattermost_plugin-github_plugin.json") == ("mattermost-plugin", ["server:execute", "ui:extend"], ())
    assert mapped("mattermost_plugin-starter-template_plugin.json")[1] == ["server:execute", "ui:extend"]
    assert mapped("grafana_clock-panel_MANIFEST.txt") == ("grafana", [], ())


def test_every_url_slack_sends_to_is_egress_socket_mode_or_not():
    manifest = {
        "features": {"slash_commands": [{"command": "/a", "url": "https://Cmd.Example.com/a"}, {"command": "/b"}],
                     "unfurl_domains": ["docs.example.net"]},
        "oauth_config": {"scopes": {"bot": ["commands"]}, "redirect_urls": ["https://auth.example.com/cb"]},
        "settings": {"event_subscriptions": {"request_url": "https://events.example.com/e"},
                     "interactivity": {"is_enabled": True, "request_url": "https://events.example.com/i",
                                       "message_menu_options_url": "https://menus.example.com/m"}},
    }  # fmt: skip
    hosts = ("events.example.com", "menus.example.com", "cmd.example.com", "auth.example.com", "docs.example.net")
    assert platform_manifest(json.dumps(manifest).encode(), "manifest.json").egress == hosts
    # Socket Mode takes events over Slack's WebSocket, but switching it off in Slack's settings needs no
    # new manifest: the URLs it lists still count.
    manifest["settings"]["socket_mode_enabled"] = True
    assert platform_manifest(json.dumps(manifest).encode(), "manifest.json").egress == hosts
    manifest["settings"]["event_subscriptions"]["request_url"] = "/slack/events"  # where to? unknown: unusable
    with pytest.raises(EvidenceError) as info:
        platform_manifest(json.dumps(manifest).encode(), "manifest.json")
    assert info.value.field == "manifest.json: settings.event_subscriptions.request_url"


@pytest.mark.parametrize(
    ("section", "value", "field"),
    [
        ("features", {"slash_commands": 5}, "features.slash_commands"),
        ("features", {"unfurl_domains": 3}, "features.unfurl_domains"),
        ("features", {"slash_commands": ["/a"]}, "features.slash_commands[0]"),
        ("oauth_config", {"redirect_urls": "https://x.example/cb"}, "oauth_config.redirect_urls"),
        ("oauth_config", [{"scopes": {"bot": ["admin"]}}], "oauth_config"),
        ("oauth_config", {"scopes": ["chat:write", "admin"]}, "oauth_config.scopes"),
        ("oauth_config", {"scopes": {"bot": "admin"}}, "oauth_config.scopes.bot"),
        ("oauth_config", {"scopes": {"user": [{"name": "admin"}]}}, "oauth_config.scopes.user[0]"),
        ("settings", "socket", "settings"),
        (
            "settings",
            {"event_subscriptions": {"request_url": "http://[::1"}},
            "settings.event_subscriptions.request_url",
        ),
        # api.github.com to urlsplit, evil.example to a browser-style parser: where it goes is unknown
        (
            "settings",
            {"event_subscriptions": {"request_url": "https://evil.example\\@api.github.com/events"}},
            "settings.event_subscriptions.request_url",
        ),
        (
            "settings",
            {"interactivity": {"request_url": "https://evil%2Eexample/i"}},
            "settings.interactivity.request_url",
        ),
        ("features", {"unfurl_domains": ["evil.example\\@api.github.com"]}, "features.unfurl_domains[0]"),
    ],
)
def test_a_slack_manifest_field_of_the_wrong_shape_names_itself(section, value, field):
    """Never a traceback, never a string read as a list of one-letter URLs."""
    with pytest.raises(EvidenceError) as info:
        platform_manifest(json.dumps({"oauth_config": {"scopes": {}}, section: value}).encode(), "manifest.json")
    assert info.value.field == f"manifest.json: {field}"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"requested_permissions": "act_as_admin"}, "requested_permissions"),
        ({"requested_permissions": [["act_as_admin"]]}, "requested_permissions[0]"),
        ({"requested_locations": {"/post_menu": True}}, "requested_locations"),
        ({"http": "https://collector.evil.example"}, "http"),
        ({"http": {"root_url": ""}}, "http.root_url"),
    ],
)
def test_a_mattermost_app_field_of_the_wrong_shape_names_itself(value, field):
    """A permission string is not read as its letters, an object not as its keys, and a malformed
    http section is not a crash (or no egress)."""
    with pytest.raises(EvidenceError) as info:
        platform_manifest(json.dumps({"app_id": "notes", **value}).encode(), "manifest.json")
    assert info.value.field == f"manifest.json: {field}"


def test_optional_scopes_and_outgoing_domains_are_requested_too():
    """Slack's bot_optional and user_optional scopes are granted at install with one click, and a
    workflow app's functions reach its outgoing_domains: neither may pass unseen."""
    manifest = {
        "display_information": {"name": "notes"},
        "outgoing_domains": ["collector.evil.example"],
        "oauth_config": {"scopes": {"bot": ["chat:write"], "bot_optional": ["admin.users:write", "*"],
                                    "user_optional": ["files:write"], "team_optional": ["search:read"]}},
    }  # fmt: skip
    read = platform_manifest(json.dumps(manifest).encode(), "manifest.json")
    assert read.permissions == (
        ("slack bot scope chat:write", "post:messages"),
        ("slack bot_optional scope admin.users:write", "admin:settings"),
        ("slack bot_optional scope *", None),
        ("slack user_optional scope files:write", "files:write"),
        ("slack user_optional scope files:write", "act_as_user"),
        ("slack team_optional scope search:read", None),
    )
    assert read.egress == ("collector.evil.example",)


@pytest.mark.parametrize(
    "doc",
    [
        {"app_id": "notes", "requested_permissions": ["act_as_admin"], "http": {"root_url": "https://evil.example"},
         "oauth_config": {"scopes": {"bot": ["chat:write"]}}},
        {"id": "notes", "app_id": "notes", "server": {"executables": {"linux-amd64": "server/plugin"}}},
    ],
)  # fmt: skip
def test_a_manifest_that_reads_as_two_platforms_is_unusable(doc):
    """Mattermost ignores a Slack section and Slack a Mattermost one: reading it as either platform
    alone would ignore the permissions the other grants."""
    with pytest.raises(EvidenceError, match="at once"):
        platform_manifest(json.dumps(doc).encode(), "manifest.json")


def test_a_slack_manifest_without_scopes_is_still_a_slack_manifest():
    doc = {"display_information": {"name": "links"}, "features": {"unfurl_domains": ["docs.example.net"]}}
    read = platform_manifest(json.dumps(doc).encode(), "manifest.json")
    assert (read.format, read.permissions, read.egress) == ("slack", (), ("docs.example.net",))


@pytest.mark.realdata
def test_yaml_manifests_read_like_their_json(real_samples):
    """Slack exports app manifests as YAML or JSON, and Mattermost reads plugin.yaml as well as
    plugin.json: the same manifest in YAML requests the same permissions."""
    import yaml

    for name, yaml_name in (("slack_bolt-js-starter-template_manifest.json", "manifest.yml"),
                            ("mattermost_plugin-github_plugin.json", "plugin.yaml")):  # fmt: skip
        data = (real_samples / "plugins" / name).read_bytes()
        doc = json.loads(data)
        if "oauth_config" in doc:
            doc["settings"]["event_subscriptions"]["request_url"] = "https://bolt.example.com/slack/events"
            doc["oauth_config"]["scopes"]["bot_optional"] = ["admin.users:write"]
        as_json = platform_manifest(json.dumps(doc).encode(), name)
        as_yaml = platform_manifest(yaml.safe_dump(doc).encode(), yaml_name)
        assert (as_yaml.format, as_yaml.permissions, as_yaml.egress) == (
            as_json.format,
            as_json.permissions,
            as_json.egress,
        )
        assert as_yaml.permissions
    with pytest.raises(EvidenceError, match="expected a platform manifest in YAML"):
        platform_manifest(b"oauth_config: {scopes: {bot: [*]}}\n", "manifest.yml")


def test_only_a_clear_signed_file_is_a_grafana_manifest():
    """The PGP armour inside a Slack manifest's description does not make it a Grafana MANIFEST.txt
    (which has no permissions): the manifest's scopes still count."""
    doc = {"display_information": {"name": "x", "description": "-----BEGIN PGP SIGNED MESSAGE-----"},
           "oauth_config": {"scopes": {"bot": ["admin"]}}}  # fmt: skip
    assert platform_manifest(json.dumps(doc).encode(), "manifest.json").format == "slack"


@pytest.mark.realdata
def test_a_permission_without_a_mapping_is_kept_as_unknown(real_samples):
    text = (real_samples / "plugins/slack_bolt-js-starter-template_manifest.json").read_text()
    manifest = platform_manifest(text.replace('"commands"', '"calls:write"').encode(), "manifest.json")
    assert ("slack bot scope calls:write", None) in manifest.permissions


@pytest.mark.realdata
def test_grafana_manifest_paths_in_our_spelling(real_samples):
    data = (real_samples / "plugins/grafana_clock-panel_MANIFEST.txt").read_bytes()
    assert b"\r\n" in data
    files = grafana_files(data, "MANIFEST.txt")
    assert len(files) == 6 and files["module.js"].startswith("ad4ae64e")
    windows = data.replace(b'"module.js.map"', b'"dist\\\\maps\\\\module.js.map"')
    assert "dist/maps/module.js.map" in grafana_files(windows, "MANIFEST.txt")


def test_the_documented_tables_are_the_code():
    import re

    from phase8_assets.domains.plugins import REASONS
    from phase8_assets.evidence import plugins
    from phase8_assets_tests.conftest import REPO

    doc = (REPO / "docs/security/plugin-signing.md").read_text()
    rows = set(re.findall(r"^\| ([\w-]+) \| `([^`]+)` \| `([^`]+)` \|", doc, re.M))
    code = {("slack", k, v) for k, v in plugins.SLACK_SCOPES.items()}
    code |= {("mattermost-app", k, v) for k, v in plugins.MATTERMOST_APP_PERMISSIONS.items()}
    code |= {("mattermost-app", k, v) for k, v in plugins.MATTERMOST_APP_LOCATIONS.items()}
    code |= {("mattermost-plugin", k, v) for k, v in plugins.MATTERMOST_PLUGIN_PARTS.items()}
    code |= {("grafana-plugin", k, v) for k, v in plugins.GRAFANA_PLUGIN_PARTS.items()}
    assert rows == code
    reasons = dict(re.findall(r"^\| `([\w-]+)` \| `(plugin_\w+)` \| 1 \|", doc, re.M))
    assert reasons == {reason: gate for reason, (gate, _) in REASONS.items()}
    section = doc.split("## Capabilities", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `([^`]+)` \|", section, re.M) == list(plugins.CAPABILITIES)


def test_a_gzip_bomb_is_refused_without_holding_its_inflated_bytes():
    import tarfile
    import tracemalloc
    import zlib

    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    info = tarfile.TarInfo("zeros.bin")
    info.size = 64 << 20
    bomb = deflate.compress(info.tobuf()) + b"".join(deflate.compress(b"\0" * (1 << 20)) for _ in range(64))
    bomb += deflate.flush()
    limits = BundleLimits(max_files=10, max_file_bytes=16 << 20, max_total_bytes=16 << 20)  # ~16 MB of tar
    tracemalloc.start()
    try:
        refusals = read_bundle_bytes(bomb, "bomb.tar.gz", limits).refusals
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r.reason for r in refusals] == ["bundle-too-large"]
    assert peak < 4 << 20, f"{peak} bytes held while refusing"


def test_a_platform_manifest_the_bundle_does_not_declare_is_unusable():
    """Slack or Mattermost would read its scopes at install time, while the verifier never saw them."""
    contents = load_contents(DATA / "evidence/plugins/org.matterpoll.polls-1.6.0.tar.gz")
    slack = json.dumps({"display_information": {"name": "polls"},
                        "oauth_config": {"scopes": {"bot": ["admin.users:write"]}}}).encode()  # fmt: skip
    with pytest.raises(EvidenceError, match="'app/manifest.yml' is a slack manifest the bundle does not declare"):
        read_bundle_bytes(write_bundle({**contents, "app/manifest.yml": slack}), "polls.tar.gz")
    web_app = json.dumps({"name": "Polls", "icons": [], "start_url": "/"}).encode()  # no platform's manifest
    assert read_bundle_bytes(write_bundle({**contents, "webapp/manifest.json": web_app}), "polls.tar.gz").files


@pytest.mark.parametrize(
    "doc",
    [
        # Mattermost Apps reads app_id, its permissions and root_url, and ignores the Slack field
        {"app_id": "polls", "homepage_url": "https://github.com/matterpoll/matterpoll",
         "requested_permissions": ["act_as_admin"], "http": {"root_url": "https://collect.evil.example"},
         "display_information": {"name": "Polls"}},
        {"id": "polls", "server": {"executable": "server/plugin"}, "app_id": "polls"},
    ],
)  # fmt: skip
def test_an_undeclared_platform_manifest_that_is_unusable_is_not_skipped(doc):
    """Only a file that is no platform's manifest is left alone: one the platform would install,
    but that is unusable here (two platforms' fields), is not skipped as if it asked for nothing."""
    contents = load_contents(DATA / "evidence/plugins/org.matterpoll.polls-1.6.0.tar.gz")
    bundle = write_bundle({**contents, "app/manifest.json": json.dumps(doc).encode()})
    with pytest.raises(EvidenceError, match="'app/manifest.json' is a platform manifest the bundle does not declare"):
        read_bundle_bytes(bundle, "polls.tar.gz")


@pytest.mark.realdata
def test_mattermost_reads_json_names_whatever_their_case(real_samples):
    """Mattermost decodes plugin.json and App manifests with Go's encoding/json, which matches a
    name to a field whatever its case: "Server" is a server the plugin runs, "HTTP"/"Root_URL" where
    the app's calls go. Two spellings of one field are unusable (Go keeps the last one)."""
    plugin = json.loads((real_samples / "plugins/mattermost_plugin-github_plugin.json").read_bytes())
    plugin["Server"] = plugin.pop("server")
    del plugin["webapp"]
    read = platform_manifest(json.dumps(plugin).encode(), "mattermost/plugin.json")
    assert (read.format, read.permissions) == ("mattermost-plugin", (("mattermost plugin server", "server:execute"),))
    app = {"App_ID": "hello", "Requested_Permissions": ["act_as_admin"], "HTTP": {"Root_URL": "https://evil.example"}}
    read = platform_manifest(json.dumps(app).encode(), "manifest.json")
    assert (read.format, read.permissions, read.egress) == (
        "mattermost-app", (("mattermost app permission act_as_admin", "admin:settings"),), ("evil.example",)
    )  # fmt: skip
    twice = {**app, "http": {"root_url": "https://api.github.com"}}
    with pytest.raises(EvidenceError, match="'HTTP' and 'http' are one field to Mattermost") as info:
        platform_manifest(json.dumps(twice).encode(), "manifest.json")
    assert info.value.field == "manifest.json: http"
    # an undeclared one is found too: the bundle is unusable, not a community plugin running a server
    contents = load_contents(DATA / "evidence/plugins/org.matterpoll.polls-1.6.0.tar.gz")
    undeclared = {"id": "polls", "name": "Polls", "Server": {"executable": "server/plugin-linux-amd64"}}
    with pytest.raises(EvidenceError, match="'mattermost/plugin.json' is a mattermost-plugin manifest"):
        read_bundle_bytes(write_bundle({**contents, "mattermost/plugin.json": json.dumps(undeclared).encode()}), "p")
    # YAML is read by yaml.v2, which compares names exactly
    assert platform_manifest(b"id: polls\nServer: {executable: x}\nwebapp: {bundle_path: y}\n", "plugin.yaml").permissions == (
        ("mattermost plugin webapp", "ui:extend"),
    )  # fmt: skip


@pytest.mark.realdata
def test_a_v0_7_app_manifest_root_url_is_egress(real_samples):
    """Mattermost Apps still reads the v0.7 manifest format (root_url at the top, app_type: http),
    and prefers it when the file has no SchemaVersion: its root URL is where every call goes."""
    app = json.loads((real_samples / "plugins/mattermost_app_hello-lifecycle_manifest.json").read_bytes())
    del app["http"]
    app |= {"app_type": "http", "root_url": "https://collect.evil.example"}
    assert platform_manifest(json.dumps(app).encode(), "manifest.json").egress == ("collect.evil.example",)
    both = {**app, "http": {"root_url": "http://mattermost-apps-golang-lifecycle:8083"}}
    read = platform_manifest(json.dumps(both).encode(), "manifest.json")
    assert read.egress == ("mattermost-apps-golang-lifecycle", "collect.evil.example")
    with pytest.raises(EvidenceError) as info:
        platform_manifest(json.dumps({**app, "root_url": "/calls"}).encode(), "manifest.json")
    assert info.value.field == "manifest.json: root_url"


def test_an_admin_user_scope_is_admin_settings_acting_as_the_user():
    """Slack grants admin.* scopes to user tokens only: as documented, such a scope is its bot
    mapping (admin:settings) plus act_as_user, not an unknown permission a core app is refused for."""
    doc = {"display_information": {"name": "audit"},
           "oauth_config": {"scopes": {"user": ["admin.users:read", "admin"], "user_optional": ["admin.teams:write"]}}}  # fmt: skip
    read = platform_manifest(json.dumps(doc).encode(), "manifest.json")
    assert {ours for _, ours in read.permissions} == {"admin:settings", "act_as_user"}
    doc["oauth_config"]["scopes"] = {"user": ["administrator:read", "admin:read"]}
    assert {ours for _, ours in platform_manifest(json.dumps(doc).encode(), "m.json").permissions} == {
        None,
        "act_as_user",
    }


@pytest.mark.realdata
def test_a_location_below_a_top_level_one_maps_like_it(real_samples):
    """Mattermost Apps takes /command/poll for the /poll command (a /command location) and
    /post_menu/x for a post menu item: each maps as its top-level location; others stay unknown."""
    app = json.loads((real_samples / "plugins/mattermost_app_hello-serverless_manifest.json").read_bytes())
    app["requested_locations"] = ["/command/poll", "/post_menu/vote", "/channel_header", "/commandx", "command", "/"]
    read = platform_manifest(json.dumps(app).encode(), "manifest.json")
    assert [ours for what, ours in read.permissions if "location" in what] == [
        "commands", "ui:extend", "ui:extend", None, None, None
    ]  # fmt: skip


def mattermost_bundle(doc, shipped, name="mattermost/plugin.json"):
    """The demo polls plugin shipping the Mattermost plugin manifest ``doc`` (declared) and, below the
    manifest's folder, the files ``shipped``."""
    contents = load_contents(DATA / "evidence/plugins/org.matterpoll.polls-1.6.0.tar.gz")
    ours = json.loads(contents["plugin.json"])
    folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    contents |= {
        "plugin.json": json.dumps({**ours, "platform_manifest": name}).encode(),
        name: json.dumps(doc).encode(),
    }
    contents |= {folder + path: b"\x7fELF" for path in shipped}
    return write_bundle(contents)


@pytest.mark.realdata
def test_a_mattermost_plugin_without_the_files_its_manifest_names_is_unusable(real_samples):
    """Mattermost starts the server executable and serves the web app bundle that plugin.json names,
    from the plugin's folder (the manifest's): a bundle without one is a plugin that fails to start."""
    doc = json.loads((real_samples / "plugins/mattermost_plugin-starter-template_plugin.json").read_bytes())
    named = [*doc["server"]["executables"].values(), doc["webapp"]["bundle_path"]]
    assert read_bundle_bytes(mattermost_bundle(doc, named), "p").platform.format == "mattermost-plugin"
    with pytest.raises(EvidenceError) as info:
        read_bundle_bytes(mattermost_bundle(doc, [p for p in named if "darwin-arm64" not in p]), "p")
    assert info.value.field == "mattermost/plugin.json: server.executables.darwin-arm64"
    assert info.value.reason.startswith("'mattermost/server/dist/plugin-darwin-arm64' is not a file of the bundle")
    # relative to the manifest's folder, not to the top of the bundle
    with pytest.raises(EvidenceError, match="'mattermost/webapp/dist/main.js' is not a file"):
        read_bundle_bytes(mattermost_bundle(doc, named[:-1]), "p")
    # Go reads the fields whatever their case; yaml.v2 as written; the single executable counts too
    go_case = {"id": "polls", "Webapp": {"Bundle_Path": "webapp/main.js"}}
    with pytest.raises(EvidenceError, match="'mattermost/webapp/main.js' is not a file") as info:
        read_bundle_bytes(mattermost_bundle(go_case, []), "p")
    assert info.value.field == "mattermost/plugin.json: webapp.bundle_path"
    with pytest.raises(EvidenceError) as info:
        read_bundle_bytes(
            mattermost_bundle({"id": "polls", "server": {"executable": "plugin"}}, [], "mm/plugin.yaml"), "p"
        )
    assert info.value.field == "mm/plugin.yaml: server.executable"
    with pytest.raises(EvidenceError, match="leaves the plugin's folder"):
        read_bundle_bytes(mattermost_bundle({"id": "polls", "webapp": {"bundle_path": "../plugin.json"}}, []), "p")
    with pytest.raises(EvidenceError, match="expected a path in the plugin, got 7"):
        read_bundle_bytes(mattermost_bundle({"id": "polls", "webapp": {"bundle_path": 7}}, []), "p")


GRAFANA_BACKEND = {"id": "acme-jira-datasource", "type": "datasource", "name": "Jira", "backend": True,
                   "executable": "gpx_jira", "info": {"version": "1.0.0"},
                   "dependencies": {"grafanaDependency": ">=10.0.0"}}  # fmt: skip


def test_a_grafana_plugin_json_that_runs_a_backend_asks_for_server_execute():
    """Grafana starts a backend plugin's executable (``"backend": true``) as its own process on the
    server: the counterpart of a Mattermost plugin's ``server``. Grafana's plugin.json was no
    platform's manifest, so a bundle shipping one was never checked for it; an app plugin's
    ``iam.permissions`` (its service account's grants) have no mapping and are refused as unknown."""
    read = platform_manifest(json.dumps(GRAFANA_BACKEND).encode(), "jira/plugin.json")
    assert (read.format, read.permissions) == ("grafana-plugin", (("grafana plugin backend", "server:execute"),))
    panel = {"id": "grafana-clock-panel", "type": "panel", "name": "Clock", "info": {"version": "2.1.3"}}
    assert platform_manifest(json.dumps(panel).encode(), "clock/plugin.json").permissions == ()
    app = {**panel, "type": "app", "iam": {"permissions": [{"action": "dashboards:read", "scope": "dashboards:*"}]}}
    assert platform_manifest(json.dumps(app).encode(), "app/plugin.json").permissions == (
        ("grafana plugin iam permission dashboards:read", None),
    )
    with pytest.raises(EvidenceError) as info:
        platform_manifest(json.dumps({**GRAFANA_BACKEND, "backend": "yes"}).encode(), "jira/plugin.json")
    assert info.value.field == "jira/plugin.json: backend"
    # undeclared in a bundle: unusable, never a backend nobody checked; a frontend-only one is left alone
    contents = load_contents(DATA / "evidence/plugins/org.matterpoll.polls-1.6.0.tar.gz")
    with pytest.raises(EvidenceError, match="'jira/plugin.json' is a grafana-plugin manifest the bundle does not"):
        read_bundle_bytes(write_bundle({**contents, "jira/plugin.json": json.dumps(GRAFANA_BACKEND).encode()}), "b")
    assert read_bundle_bytes(write_bundle({**contents, "clock/plugin.json": json.dumps(panel).encode()}), "b").files
