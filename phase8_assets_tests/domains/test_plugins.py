"""Plugin verification, one table: every refusal reason -> the CLI's exit code -> the gate that fails.

Each case builds a real bundle (a reproducible .tar.gz, or a hand-made tar for what our writer
would never produce) and a real trust policy, runs ``phase8 plugin verify --json`` and both gates'
findings, and expects exactly its own reason and gate.
"""

import hashlib
import io
import json
import os
import tarfile
import zlib
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.domains.plugins import CAPABILITY_GATE, REASONS, SIGNATURES, gate_findings, verify
from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.plugins import (
    MANIFEST,
    SIGNATURE,
    canonical_manifest,
    generate_key,
    key_id,
    manifest_for,
    parse_manifest,
    public_pem,
    read_bundle_bytes,
    read_bundle_path,
    read_trust,
    sign_manifest,
    write_bundle,
)
from phase8_assets.evidence.upgrade import parse_version

AT = "2026-11-20T12:00:00Z"
KEY = generate_key(hashlib.sha256(b"test publisher key").digest())
STRANGER = generate_key(hashlib.sha256(b"a key nobody trusts").digest())
PLUGIN = "com.example.notes"


def plugin_files(version="1.2.0", capabilities=("post:messages", "commands"), egress=(), publisher="example",
                 min_server="10.0.0"):  # fmt: skip
    manifest = {"apiVersion": "phase8/v1", "kind": "PluginManifest", "id": PLUGIN, "version": version,
                "publisher": publisher, "min_server_version": min_server, "entry_points": {"webapp": "webapp/main.js"},
                "capabilities": list(capabilities), "egress": list(egress)}  # fmt: skip
    return {
        "plugin.json": json.dumps(manifest).encode(),
        "webapp/main.js": b"export default 1;\n",
        "README.md": b"# notes\n",
    }


def signed(files, key=KEY):
    manifest = manifest_for(files)
    return {**files, MANIFEST: manifest, SIGNATURE: sign_manifest(key, manifest)}


def digest(files):
    return hashlib.sha256(canonical_manifest(parse_manifest(files[MANIFEST]))).hexdigest()


APPROVED = signed(plugin_files("1.0.0"))


def trust(not_before="2026-01-01T00:00:00Z", not_after="2027-01-01T00:00:00Z", revoked=False):
    pem = "".join(f"      {line}\n" for line in public_pem(KEY.public_key()).decode().splitlines())
    return f"""\
apiVersion: phase8/v1
kind: PluginTrustPolicy
reviewed: "2026-11-01"
keys:
  - key_id: {key_id(KEY.public_key())}
    publisher: example
    public_key: |
{pem}    trust: community
    not_before: "{not_before}"
    not_after: "{not_after}"
{"    revoked: {reason: leaked}" if revoked else ""}
levels:
  core: {{capabilities: [post:messages, commands, act_as_user], egress: ["*"]}}
  verified: {{capabilities: [post:messages, commands]}}
  community: {{capabilities: [post:messages, commands], egress: ["*.example.org"]}}
  private: {{capabilities: [post:messages]}}
tenants: {{acme: [{PLUGIN}]}}
approved:
  {PLUGIN}: {{version: 1.0.0, manifest_sha256: {digest(APPROVED)}}}
"""


def raw_tar(members, gzip=True):
    """A hand-made archive: [(TarInfo, data or None)]; data None writes the header alone."""
    out = io.BytesIO()
    for info, data in members:
        out.write(info.tobuf(tarfile.GNU_FORMAT))
        if data is not None:
            out.write(data + b"\0" * (-len(data) % 512))
    out.write(b"\0" * 1024)
    return zlib.compress(out.getvalue(), wbits=31) if gzip else out.getvalue()


def member(name, kind=tarfile.REGTYPE, size=0, link="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mode = kind, size, link, mode
    return info


def with_members(*extra):
    files = signed(plugin_files())
    return raw_tar([(member(n, size=len(d)), d) for n, d in sorted(files.items())] + list(extra))


def edited_manifest():
    files = signed(plugin_files())
    changed = b"# notes, edited\n"
    files["README.md"] = changed
    files[MANIFEST] = files[MANIFEST].replace(hashlib.sha256(b"# notes\n").hexdigest().encode(),
                                              hashlib.sha256(changed).hexdigest().encode())  # fmt: skip
    return write_bundle(files)


def gzip_bomb():
    """140 MiB of zeros in ~140 KB: more tar than the limits allow, caught while inflating (before
    its header could even be read)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = member("zeros.bin", size=140 * 1024 * 1024).tobuf(tarfile.GNU_FORMAT)
    chunk = b"\0" * (1024 * 1024)
    body = deflate.compress(head) + b"".join(deflate.compress(chunk) for _ in range(140))
    return body + deflate.flush()


def hidden_after(gap):
    """A signed bundle, then ``gap`` (a damaged header, or the end-of-archive marker), then a member
    nobody signed: tarfile stops at the gap; GNU tar skips a damaged header and extracts the rest."""
    files = signed(plugin_files())
    head = raw_tar([(member(n, size=len(d)), d) for n, d in sorted(files.items())], gzip=False)[:-1024]
    evil = raw_tar([(member("webapp/evil.js", size=8), b"steal()\n")], gzip=False)
    return zlib.compress(head + gap + evil, wbits=31)


def damaged_header():
    header = bytearray(member("junk", size=0).tobuf(tarfile.GNU_FORMAT))
    header[148:156] = b"0000000\0"  # a wrong checksum
    return bytes(header)


def drop(files, name):
    return {k: v for k, v in files.items() if k != name}


GRAFANA = {"plugin.json": b'{"type": "panel", "id": "example-notes-panel", "info": {"version": "1.2.0"}}\n',
           "module.js": b"define([], function () { return {}; });\n", "img/logo.svg": b"<svg/>\n"}  # fmt: skip


def grafana_manifest(listed, template=None):
    """A Grafana MANIFEST.txt listing ``listed`` (path -> content): PGP clear-signed JSON with CRLF
    line endings, framed like ``template`` (a real one) when given. Grafana's PGP signature is not
    ours to check: the bundle is signed with our key."""
    body = json.dumps({"plugin": "example-notes-panel", "version": "1.2.0", "time": 1589594210257, "keyId": "7e4d0c6a708866e7",
                       "files": {p: hashlib.sha256(d).hexdigest() for p, d in sorted(listed.items())}}, indent=2)  # fmt: skip
    if template is not None:
        head, rest = template.split(b"\r\n\r\n{", 1)
        return (
            head
            + b"\r\n\r\n"
            + body.replace("\n", "\r\n").encode()
            + b"\r\n"
            + rest[rest.index(b"-----BEGIN PGP SIGNATURE") :]
        )
    armour = "-----BEGIN PGP SIGNATURE-----\nVersion: OpenPGP.js v4.10.1\n\nwqIEARMKAAYFAl6/SGIACgkQfk0ManCIZuc=\n=w0Gk\n-----END PGP SIGNATURE-----\n"
    return f"\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{body}\n{armour}".replace("\n", "\r\n").encode()  # fmt: skip


def with_grafana(listed, shipped, declared=False, template=None):
    """Our plugin with a Grafana panel under grafana/: its MANIFEST.txt lists ``listed``, the bundle
    ships ``shipped``; both signed with our key."""
    files = plugin_files()
    if declared:
        manifest = json.loads(files["plugin.json"])
        files["plugin.json"] = json.dumps({**manifest, "platform_manifest": "grafana/MANIFEST.txt"}).encode()
    files |= {f"grafana/{p}": d for p, d in shipped.items()}
    files["grafana/MANIFEST.txt"] = grafana_manifest(listed, template)
    return write_bundle(signed(files))


# reason -> (bundle bytes, trust policy text)
CASES = {
    "unsigned": (lambda: write_bundle(drop(signed(plugin_files()), SIGNATURE)), trust),
    "manifest-invalid": (lambda: write_bundle({**signed(plugin_files()), MANIFEST: b"not a manifest line\n"}), trust),
    "unknown-key": (lambda: write_bundle(signed(plugin_files(), STRANGER)), trust),
    "bad-signature": (edited_manifest, trust),
    "revoked-key": (lambda: write_bundle(signed(plugin_files())), lambda: trust(revoked=True)),
    "key-not-yet-valid": (lambda: write_bundle(signed(plugin_files())), lambda: trust(not_before="2026-12-01T00:00:00Z")),
    "key-expired": (lambda: write_bundle(signed(plugin_files())), lambda: trust(not_after="2026-11-01T00:00:00Z")),
    "publisher-mismatch": (lambda: write_bundle(signed(plugin_files(publisher="someone-else"))), trust),
    "file-added": (lambda: write_bundle({**signed(plugin_files()), "webapp/extra.js": b"steal()\n"}), trust),
    "file-removed": (lambda: write_bundle(drop(signed(plugin_files()), "README.md")), trust),
    "file-changed": (lambda: write_bundle({**signed(plugin_files()), "webapp/main.js": b"steal();\n"}), trust),
    "path-traversal": (lambda: with_members((member("../../etc/cron.d/x", size=2), b"x\n")), trust),
    "absolute-path": (lambda: with_members((member("/etc/cron.d/x", size=2), b"x\n")), trust),
    # written by a tool in Latin-1: the bytes 'caf\xe9.js' (tarfile hands them back as a lone surrogate)
    "path-not-utf8": (lambda: with_members((member("webapp/caf\udce9.js", size=2), b"x\n")), trust),
    "symlink": (lambda: with_members((member("webapp/lib", tarfile.SYMTYPE, link="/etc"), None)), trust),
    "special-file": (lambda: with_members((member("webapp/pipe", tarfile.FIFOTYPE), None)), trust),
    "world-writable": (lambda: with_members((member("webapp/cache", tarfile.DIRTYPE, mode=0o777), None)), trust),
    "duplicate-path": (lambda: with_members((member("README.md", size=4), b"bad\n")), trust),
    "path-collision": (lambda: with_members((member("webapp/Main.js", size=8), b"steal()\n")), trust),
    "too-many-files": (lambda: with_members(*[(member(f"f/{i}"), b"") for i in range(2000)]), trust),
    # A header claiming 40 MiB with no data behind it: refused from the header, nothing read.
    "file-too-large": (lambda: with_members((member("big.bin", size=40 * 1024 * 1024), None)), trust),
    "bundle-too-large": (gzip_bomb, trust),
    "platform-file-added": (lambda: with_grafana(GRAFANA, {**GRAFANA, "extra.js": b"steal()\n"}), trust),
    "platform-file-removed": (lambda: with_grafana({**GRAFANA, "LICENSE": b"MIT\n"}, GRAFANA), trust),
    "platform-file-changed": (lambda: with_grafana(GRAFANA, {**GRAFANA, "module.js": b"steal()\n"}), trust),
    "rollback": (lambda: write_bundle(signed(plugin_files("0.9.0"))), trust),
    "resigned": (lambda: write_bundle(signed({**plugin_files("1.0.0"), "README.md": b"# other\n"})), trust),
    "unknown-capability": (lambda: write_bundle(signed(plugin_files(capabilities=["post:messages", "launch:rockets"]))), trust),
    "capability-above-trust": (lambda: write_bundle(signed(plugin_files(capabilities=["post:messages", "act_as_user"]))), trust),
    "egress-not-allowed": (lambda: write_bundle(signed(plugin_files(egress=["api.example.org", "evil.example.com"]))), trust),
    "server-version": (lambda: write_bundle(signed(plugin_files(min_server="10.5.0"))), trust),
}  # fmt: skip
RELEASE = "10.4.0"  # the release every case is verified for (the server-version case needs a newer one)


def test_every_reason_has_a_case():
    assert sorted(CASES) == sorted(REASONS)


@pytest.mark.parametrize("reason", list(CASES))
def test_refusal_reason_exit_code_and_gate(reason, tmp_path):
    make_bundle, make_trust = CASES[reason]
    bundle, policy_file = tmp_path / "bundle.tar.gz", tmp_path / "trust.yaml"
    bundle.write_bytes(make_bundle())
    policy_file.write_text(make_trust())
    result = CliRunner().invoke(
        main,
        ["plugin", "verify", str(bundle), "--trust", str(policy_file), "--as-of", AT, "--release", RELEASE, "--json"],
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["verdict"] == "refused"
    assert {r["reason"] for r in report["reasons"]} == {reason}, report["reasons"]
    # The gates see the same verification: only the reason's gate has findings.
    policy = read_trust(policy_file.read_bytes(), str(policy_file)).records[0]
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    verification = verify(read_bundle_path(bundle), policy, at, release=parse_version(RELEASE, "release"))
    failing = {
        gate
        for gate in (SIGNATURES, CAPABILITY_GATE)
        if gate_findings(gate, [verification], policy, "team:x", "rb.md", "trust.yaml")
    }
    assert failing == {REASONS[reason][0]}


def test_a_good_bundle_verifies_as_folder_and_archive(tmp_path):
    files = signed(plugin_files(egress=["api.example.org"]))
    (tmp_path / "trust.yaml").write_text(trust())
    (tmp_path / "b.tar.gz").write_bytes(write_bundle(files))
    for name, data in files.items():
        (tmp_path / "dir" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "dir" / name).write_bytes(data)
    for bundle in ("b.tar.gz", "dir"):
        result = CliRunner().invoke(main, ["plugin", "verify", str(tmp_path / bundle), "--trust", str(tmp_path / "trust.yaml"),
                                           "--as-of", AT])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "verified; signed by key" in result.output


def test_a_setuid_or_setgid_file_is_refused_in_archives_and_folders(tmp_path):
    """The MANIFEST signs contents, not modes: anyone could set the setuid bit of a signed binary in
    the tar header, and GNU tar run as root installs it setuid root."""
    files = signed(plugin_files())
    for mode in (0o4755, 0o2755):
        members = []
        for name, data in sorted(files.items()):
            info = member(name, size=len(data))
            info.mode = mode if name == "webapp/main.js" else 0o644
            members.append((info, data))
        refusals = read_bundle_bytes(raw_tar(members), "b.tar.gz").refusals
        assert [(r.reason, r.observed) for r in refusals] == [
            ("special-file", f"'webapp/main.js' has mode {mode:04o} (setuid/setgid)")
        ]
    folder = tmp_path / "notes"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / "webapp").chmod(0o2755)  # a setgid folder only passes its group on: harmless
    assert read_bundle_path(folder).refusals == []
    (folder / "webapp/main.js").chmod(0o4755)
    assert [r.reason for r in read_bundle_path(folder).refusals] == ["special-file"]


# extra files beside the signed ones -> the path that collides, and the one it collides with
COLLISIONS = {
    "case": ({"webapp/Main.js": b"steal()\n"}, "webapp/Main.js", "webapp/main.js"),
    "case of a folder": ({"WebApp/main.js": b"steal()\n"}, "WebApp/main.js", "webapp/main.js"),
    "a dotless i, which Windows upper-cases to I": ({"webapp/ma\u0131n.js": b"steal()\n"}, "webapp/ma\u0131n.js", "webapp/main.js"),
    "Windows drops a trailing dot": ({"webapp/main.js.": b"steal()\n"}, "webapp/main.js.", "webapp/main.js"),
    "Windows drops a trailing space": ({"webapp/main.js ": b"steal()\n"}, "webapp/main.js ", "webapp/main.js"),
    "a file that is a folder": ({"WEBAPP": b"steal()\n"}, "WEBAPP", "webapp"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(COLLISIONS))
def test_paths_one_file_system_takes_for_one_file_are_refused_in_archives_and_folders(case, tmp_path):
    """macOS and Windows ignore case (and Windows trailing dots and spaces): one file overwrites the
    other at install, and which one runs depends on the file system and the order of extraction."""
    extra, path, other = COLLISIONS[case]
    files = {**signed(plugin_files()), **extra}
    refusals = read_bundle_bytes(raw_tar([(member(n, size=len(d)), d) for n, d in files.items()]), "b.tar.gz").refusals
    assert [r.reason for r in refusals] == ["path-collision"]
    assert refusals[0].observed.startswith(f"{path!r} ") and repr(other) in refusals[0].observed
    folder = tmp_path / "notes"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    assert [r.reason for r in read_bundle_path(folder).refusals] == ["path-collision"]


def test_a_name_in_nfd_beside_itself_in_nfc_is_one_path_twice():
    nfc, nfd = "webapp/caf\u00e9.js", "webapp/cafe\u0301.js"
    files = {**signed(plugin_files()), nfc: b"reviewed\n", nfd: b"steal()\n"}
    archive = raw_tar([(member(n, size=len(d)), d) for n, d in files.items()])
    assert [(r.reason, r.observed) for r in read_bundle_bytes(archive, "b.tar.gz").refusals] == [
        ("duplicate-path", f"{nfc!r} appears twice (as {nfc!r} and {nfd!r})")
    ]


def test_paths_that_differ_in_more_than_case_are_not_collisions():
    files = signed({**plugin_files(), "webapp/main.jsx": b"1\n", "webapp/main/index.js": b"2\n", "README.txt": b"3\n"})
    assert read_bundle_bytes(write_bundle(files), "b.tar.gz").refusals == []


def with_modes(files, modes):
    """``files`` as a hand-made archive, each member with its mode from ``modes`` (path -> mode), 0644
    otherwise; a path of ``modes`` that is not a file is a folder."""
    folders = [(member(n, tarfile.DIRTYPE, mode=m), None) for n, m in modes.items() if n not in files]
    return raw_tar(folders + [(member(n, size=len(d), mode=modes.get(n, 0o644)), d) for n, d in files.items()])


@pytest.mark.parametrize("path, mode", [("webapp/main.js", 0o666), ("webapp/main.js", 0o757), ("webapp", 0o777),
                                        ("webapp", 0o1777)])  # fmt: skip
def test_a_file_or_folder_anyone_may_write_is_refused_in_archives_and_folders(path, mode, tmp_path):
    """Modes are not signed and GNU tar run as root keeps them: any local account could replace the
    reviewed code (or, through a world-writable folder, add or swap files) after verification."""
    files = signed(plugin_files())
    refusals = read_bundle_bytes(with_modes(files, {path: mode}), "b.tar.gz").refusals
    assert [(r.reason, r.observed) for r in refusals] == [
        ("world-writable", f"{path!r} has mode {mode:04o} (anyone may write it)")
    ]
    folder = tmp_path / "notes"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / path).chmod(mode)
    assert [r.reason for r in read_bundle_path(folder).refusals] == ["world-writable"]


def test_group_write_and_execute_bits_are_left_alone():
    """What ``umask 002`` (Debian and Ubuntu users' default) and a server plugin's binary give an archive."""
    files = signed({**plugin_files(), "server/dist/plugin-linux-amd64": b"\x7fELF"})
    modes = {"webapp": 0o775, "server": 0o775, "server/dist": 0o775, "server/dist/plugin-linux-amd64": 0o775,
             "webapp/main.js": 0o664, "README.md": 0o664}  # fmt: skip
    assert read_bundle_bytes(with_modes(files, modes), "b.tar.gz").refusals == []


def test_a_hard_link_to_another_file_of_the_bundle_is_refused():
    """Links are refused wherever they point: a hard link to a signed file is still a second name."""
    archive = with_members((member("webapp/copy.js", tarfile.LNKTYPE, link="webapp/main.js"), None))
    assert [(r.reason, r.observed) for r in read_bundle_bytes(archive, "b.tar.gz").refusals] == [
        ("symlink", "'webapp/copy.js' is a hard link to 'webapp/main.js'")
    ]


def test_every_reason_is_listed_not_just_the_first(tmp_path):
    files = signed(plugin_files(capabilities=["act_as_user"], egress=["evil.example.com"]))
    files["README.md"] = b"changed\n"
    (tmp_path / "b.tar.gz").write_bytes(write_bundle(files))
    (tmp_path / "trust.yaml").write_text(trust(revoked=True))
    result = CliRunner().invoke(main, ["plugin", "verify", str(tmp_path / "b.tar.gz"), "--trust", str(tmp_path / "trust.yaml"),
                                       "--as-of", AT])  # fmt: skip
    assert result.exit_code == 1
    for reason in ("revoked-key", "file-changed", "capability-above-trust", "egress-not-allowed"):
        assert f": {reason}: " in result.output


def test_the_same_version_twice_with_different_content_is_refused_for_both(tmp_path):
    policy = read_trust(trust().encode(), "trust.yaml").records[0]
    a = tmp_path / "a.tar.gz"
    b = tmp_path / "b.tar.gz"
    a.write_bytes(write_bundle(signed(plugin_files("1.3.0"))))
    b.write_bytes(write_bundle(signed({**plugin_files("1.3.0"), "README.md": b"# other\n"})))
    bundles = [read_bundle_path(a), read_bundle_path(b)]
    at = datetime(2026, 11, 20, tzinfo=UTC)
    assert [[p.reason for p in verify(x, policy, at, bundles).problems] for x in bundles] == [
        ["resigned"],
        ["resigned"],
    ]


def test_a_plugin_id_published_by_two_publishers_is_refused_for_both(tmp_path):
    """Another trusted publisher signing a bundle of the plugin with its own key verifies on its own,
    and would take over what the tenants enabled: one plugin id, one publisher."""
    pem = "".join(f"      {line}\n" for line in public_pem(STRANGER.public_key()).decode().splitlines())
    other = (f"  - key_id: {key_id(STRANGER.public_key())}\n    publisher: other\n    public_key: |\n{pem}"
             '    trust: community\n    not_before: "2026-01-01T00:00:00Z"\n    not_after: "2027-01-01T00:00:00Z"\n')  # fmt: skip
    policy = read_trust(trust().replace("keys:\n", "keys:\n" + other).encode(), "trust.yaml").records[0]
    (tmp_path / "a.tar.gz").write_bytes(write_bundle(signed(plugin_files("1.3.0"))))
    (tmp_path / "b.tar.gz").write_bytes(write_bundle(signed(plugin_files("1.4.0", publisher="other"), STRANGER)))
    bundles = [read_bundle_path(tmp_path / "a.tar.gz"), read_bundle_path(tmp_path / "b.tar.gz")]
    at = datetime(2026, 11, 20, tzinfo=UTC)
    assert [verify(x, policy, at).verdict for x in bundles] == ["verified", "verified"]  # each alone
    problems = [verify(x, policy, at, bundles).problems for x in bundles]
    assert [[p.reason for p in found] for found in problems] == [["publisher-mismatch"], ["publisher-mismatch"]]
    assert "b.tar.gz publishes com.example.notes as 'other'" in problems[0][0].observed


UNUSABLE = {
    "not gzip": (b"PK\x03\x04 a zip file", "expected a gzip-compressed tar archive"),
    "gzip, not tar": (zlib.compress(b"hello" * 200, wbits=31), "expected a tar archive"),
    "no plugin.json": (lambda: write_bundle(drop(signed(plugin_files()), "plugin.json")), "plugin.json: is required"),
    "a damaged header, then members": (lambda: hidden_after(damaged_header()), "expected only zero padding"),
    "members past the end marker": (lambda: hidden_after(b"\0" * 1024), "expected only zero padding"),
    "a Grafana MANIFEST.txt listing a file outside its folder": (lambda: with_grafana({**GRAFANA, "../plugin.json": b"{}"}, GRAFANA),
                                                                 "'../plugin.json' leaves the plugin's folder"),
    "a Grafana MANIFEST.txt that is not JSON": (lambda: write_bundle(signed({**plugin_files(), "grafana/MANIFEST.txt":
                                                 grafana_manifest(GRAFANA).replace(b'"files"', b"files")})),
                                                "grafana/MANIFEST.txt: the signed body is not JSON"),
    "wrong apiVersion": (lambda: write_bundle({**plugin_files(), "plugin.json": b'{"apiVersion": "v2", "kind": "PluginManifest"}'}),
                         "apiVersion: expected 'phase8/v1'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(UNUSABLE))
def test_unusable_input_exits_2_naming_what_is_wrong(case, tmp_path):
    data, message = UNUSABLE[case]
    (tmp_path / "b.tar.gz").write_bytes(data() if callable(data) else data)
    (tmp_path / "trust.yaml").write_text(trust())
    result = CliRunner().invoke(
        main, ["plugin", "verify", str(tmp_path / "b.tar.gz"), "--trust", str(tmp_path / "trust.yaml")]
    )
    assert result.exit_code == 2 and message in result.output, result.output


def test_an_unusable_trust_policy_exits_2(tmp_path):
    (tmp_path / "b.tar.gz").write_bytes(write_bundle(signed(plugin_files())))
    (tmp_path / "trust.yaml").write_text(trust().replace(key_id(KEY.public_key()), "0000000000000000"))
    result = CliRunner().invoke(
        main, ["plugin", "verify", str(tmp_path / "b.tar.gz"), "--trust", str(tmp_path / "trust.yaml")]
    )
    assert result.exit_code == 2 and "keys[0].key_id: expected" in result.output
    missing = CliRunner().invoke(
        main, ["plugin", "verify", str(tmp_path / "b.tar.gz"), "--trust", str(tmp_path / "none.yaml")]
    )
    assert missing.exit_code == 2 and "cannot read the trust policy" in missing.output


def test_keygen_sign_verify_round_trip(tmp_path):
    runner = CliRunner()
    made = runner.invoke(main, ["plugin", "keygen", "--out", str(tmp_path / "keys"), "--name", "example"])
    assert made.exit_code == 0, made.output
    assert oct((tmp_path / "keys/example.key").stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(main, ["plugin", "keygen", "--out", str(tmp_path / "keys"), "--name", "example"])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output
    folder = tmp_path / "notes"
    for name, data in plugin_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    key = str(tmp_path / "keys/example.key")
    assert runner.invoke(main, ["plugin", "sign", str(folder), "--key", key]).exit_code == 0
    archive = tmp_path / "notes.tar.gz"
    assert runner.invoke(main, ["plugin", "sign", str(folder), "--key", key, "--out", str(archive)]).exit_code == 0
    first = archive.read_bytes()
    assert runner.invoke(main, ["plugin", "sign", str(archive), "--key", key]).exit_code == 0
    assert archive.read_bytes() == first  # signing is deterministic, the archive reproducible
    # The new key is not in the policy until someone puts it there.
    (tmp_path / "trust.yaml").write_text(trust())
    for bundle in (folder, archive):
        result = runner.invoke(
            main, ["plugin", "verify", str(bundle), "--trust", str(tmp_path / "trust.yaml"), "--json"]
        )
        assert result.exit_code == 1 and [r["reason"] for r in json.loads(result.output)["reasons"]] == ["unknown-key"]
    (folder / "evil").symlink_to("/etc")
    refused = runner.invoke(main, ["plugin", "sign", str(folder), "--key", key])
    assert refused.exit_code == 2 and "symlink" in refused.output


def test_only_enabled_plugins_are_gated_and_each_needs_a_bundle():
    policy = read_trust(trust().encode(), "trust.yaml").records[0]
    at = datetime(2026, 11, 20, tzinfo=UTC)
    missing = gate_findings(SIGNATURES, [], policy, "team:x", "rb.md", "policy/trust.yaml")
    assert [(f.subject, f.rule, f.evidence, f.details["tenants"]) for f in missing] == [
        (PLUGIN, "bundle-present", "policy/trust.yaml", ["acme"])
    ]
    assert gate_findings(CAPABILITY_GATE, [], policy, "team:x", "rb.md", "policy/trust.yaml") == []
    policy.tenants["acme"] = ()
    unsigned = read_bundle_bytes(write_bundle(plugin_files()), "bundle.tar.gz")
    assert verify(unsigned, policy, at).verdict == "refused"
    assert gate_findings(SIGNATURES, [verify(unsigned, policy, at)], policy, "team:x", "rb.md", None) == []


@pytest.mark.parametrize("declared", [True, False])
def test_a_grafana_plugin_verifies_when_its_manifest_txt_lists_exactly_its_files(declared):
    policy = read_trust(trust().encode(), "trust.yaml").records[0]
    at = datetime(2026, 11, 20, tzinfo=UTC)
    bundle = read_bundle_bytes(with_grafana(GRAFANA, GRAFANA, declared), "panel.tar.gz")
    assert list(bundle.grafana) == ["grafana/MANIFEST.txt"]
    assert verify(bundle, policy, at).problems == []
    # A plugin signed on Windows lists img\\logo.svg: the same file as img/logo.svg.
    windows = grafana_manifest(GRAFANA).replace(b'"img/logo.svg"', b'"img\\\\logo.svg"')
    files = {**plugin_files(), **{f"grafana/{p}": d for p, d in GRAFANA.items()}, "grafana/MANIFEST.txt": windows}
    assert verify(read_bundle_bytes(write_bundle(signed(files)), "panel.tar.gz"), policy, at).problems == []


@pytest.mark.realdata
def test_a_real_grafana_manifest_txt_is_compared_with_the_files_the_bundle_ships(real_samples):
    """The clock panel's MANIFEST.txt as Grafana signed it: the files we ship are not the ones it lists."""
    real = (real_samples / "plugins/grafana_clock-panel_MANIFEST.txt").read_bytes()
    policy = read_trust(trust().encode(), "trust.yaml").records[0]
    at = datetime(2026, 11, 20, tzinfo=UTC)
    files = {
        **plugin_files(),
        "grafana/MANIFEST.txt": real,
        "grafana/module.js": b"steal()\n",
        "grafana/extra.js": b"x\n",
    }
    bundle = read_bundle_bytes(write_bundle(signed(files)), "clock.tar.gz")
    problems = [(p.reason, p.observed.split(":")[0]) for p in verify(bundle, policy, at).problems]
    assert problems == [("platform-file-added", "grafana/extra.js")] + [
        ("platform-file-removed", f"grafana/{name}")
        for name in ("LICENSE", "README.md", "module.js.LICENSE.txt", "module.js.map", "plugin.json")
    ] + [("platform-file-changed", "grafana/module.js")]
    # The same real framing (CRLF, leading blank line, OpenPGP.js armour) listing what ships verifies.
    matching = read_bundle_bytes(with_grafana(GRAFANA, GRAFANA, template=real), "clock.tar.gz")
    assert verify(matching, policy, at).problems == []


@pytest.mark.realdata
def test_a_real_slack_manifest_in_a_bundle_counts_as_requested(real_samples):
    slack = (real_samples / "plugins/slack_bolt-js-starter-template_manifest.json").read_bytes()
    files = plugin_files(capabilities=["post:messages"])
    manifest = json.loads(files["plugin.json"])
    files["plugin.json"] = json.dumps({**manifest, "platform_manifest": "slack/manifest.json"}).encode()
    policy = read_trust(trust().encode(), "trust.yaml").records[0]
    at = datetime(2026, 11, 20, tzinfo=UTC)
    bundle = read_bundle_bytes(write_bundle(signed({**files, "slack/manifest.json": slack})), "bot.tar.gz")
    result = verify(bundle, policy, at)
    # channels:history -> read:messages is above the community level; chat:write and commands are allowed.
    assert result.requested == ["commands", "post:messages", "read:messages"]
    assert [(p.reason, p.observed) for p in result.problems] == [("capability-above-trust", "requests read:messages")]
    unknown = slack.replace(b'"commands"', b'"calls:write"')
    bundle = read_bundle_bytes(write_bundle(signed({**files, "slack/manifest.json": unknown})), "bot.tar.gz")
    reasons = [(p.reason, p.observed) for p in verify(bundle, policy, at).problems]
    assert (
        "unknown-capability",
        "slack bot scope calls:write (slack/manifest.json) has no phase8 capability",
    ) in reasons


def test_a_slack_manifest_sending_events_elsewhere_is_refused_like_a_mattermost_app():
    """Slack delivers events and user input to the manifest's URLs: their hosts are the bundle's egress."""
    policy = read_trust(trust().encode(), "trust.yaml").records[0]
    at = datetime(2026, 11, 20, tzinfo=UTC)
    slack = {"oauth_config": {"scopes": {"bot": ["chat:write"]}},
             "features": {"slash_commands": [{"command": "/notes", "url": "https://api.example.org/slack/commands"}]},
             "settings": {"event_subscriptions": {"request_url": "https://collector.evil.example/slack/events"}}}  # fmt: skip
    app = {"app_id": "notes", "http": {"root_url": "https://collector.evil.example/app"}}
    for doc in (slack, app):
        files = plugin_files()
        manifest = {**json.loads(files["plugin.json"]), "platform_manifest": "manifest.json"}
        files = {**files, "plugin.json": json.dumps(manifest).encode(), "manifest.json": json.dumps(doc).encode()}
        bundle = read_bundle_bytes(write_bundle(signed(files)), "bot.tar.gz")
        problems = [(p.reason, p.observed, p.limit) for p in verify(bundle, policy, at).problems]
        assert problems == [
            ("egress-not-allowed", "egress to collector.evil.example", "community may reach *.example.org")
        ]


def mattermost_plugin(min_server, fmt="json"):
    """Our plugin shipping a Mattermost plugin manifest (mattermost/plugin.json or .yaml) that asks
    for ``min_server`` (None: names none), signed."""
    files = plugin_files()
    doc = {"id": PLUGIN, "version": "1.2.0", "webapp": {"bundle_path": "webapp/main.js"}}
    if min_server is not None:
        doc["min_server_version"] = min_server
    name = f"mattermost/plugin.{fmt}"
    manifest = {**json.loads(files["plugin.json"]), "platform_manifest": name}
    files["plugin.json"] = json.dumps(manifest).encode()
    files[name] = json.dumps(doc).encode()  # JSON is YAML too
    files["mattermost/webapp/main.js"] = b"export default 1;\n"
    return write_bundle(signed(files))


@pytest.mark.parametrize("min_server, release, observed", [
    (None, "10.4.0", None),
    ("", "10.4.0", None),
    ("10.4.0", "10.4.0", None),
    ("5.12.0", "10.4.0", None),
    # a release candidate runs as the version it will ship as, as Mattermost's own candidates report it
    ("10.4.0", "10.4.0-rc.2", None),
    ("10.4.0-rc1", "10.4.0", None),
    ("10.4.1", "10.4.0", "min_server_version of mattermost/plugin.{fmt} 10.4.1: the plugin needs a newer server"),
    ("11.0.0", "10.4.0-rc.2", "min_server_version of mattermost/plugin.{fmt} 11.0.0: the plugin needs a newer server"),
    # Mattermost parses strictly and refuses to start a plugin whose min_server_version it cannot read
    ("v5.6.0", "10.4.0", "min_server_version of mattermost/plugin.{fmt} is 'v5.6.0', which Mattermost cannot parse"),
    ("5.6", "10.4.0", "min_server_version of mattermost/plugin.{fmt} is '5.6', which Mattermost cannot parse"),
    (5.6, "10.4.0", "min_server_version of mattermost/plugin.{fmt} is 5.6, which Mattermost cannot parse"),
])  # fmt: skip
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_mattermost_plugin_needing_a_newer_server_than_the_release_is_refused(min_server, release, observed, fmt):
    policy = read_trust(trust().encode(), "trust.yaml").records[0]
    bundle = read_bundle_bytes(mattermost_plugin(min_server, fmt), "b.tar.gz")
    at = datetime(2026, 11, 20, tzinfo=UTC)
    # (its web app asks for ui:extend, above the test key's level: only the version is looked at here)
    problems = [p for p in verify(bundle, policy, at, release=parse_version(release, "release")).problems
                if p.reason == "server-version"]  # fmt: skip
    if observed is None:
        assert problems == []
    else:
        assert [p.reason for p in problems] == ["server-version"]
        assert problems[0].observed.startswith(observed.format(fmt=fmt)), problems[0].observed
        assert "the release 10.4.0" in problems[0].limit
    # no release given (plugin verify without --release): not checked
    assert "server-version" not in [p.reason for p in verify(bundle, policy, at).problems]


def test_plugin_json_min_server_version_must_be_a_version():
    with pytest.raises(EvidenceError) as caught:
        read_bundle_bytes(write_bundle(signed(plugin_files(min_server="ten"))), "b.tar.gz")
    assert caught.value.field == "plugin.json: min_server_version"


def test_plugin_verify_rejects_a_release_that_is_no_version(tmp_path):
    (tmp_path / "b.tar.gz").write_bytes(write_bundle(signed(plugin_files())))
    (tmp_path / "trust.yaml").write_text(trust())
    result = CliRunner().invoke(main, ["plugin", "verify", str(tmp_path / "b.tar.gz"), "--trust", str(tmp_path / "trust.yaml"),
                                       "--as-of", AT, "--release", "10.4"])  # fmt: skip
    assert result.exit_code == 2 and "--release: expected a version" in result.output


@pytest.mark.parametrize("kind, what", [(tarfile.CHRTYPE, "a character device"), (tarfile.BLKTYPE, "a block device"),
                                        (tarfile.FIFOTYPE, "a FIFO"), (b"V", "a tar entry of type 'V'")])  # fmt: skip
def test_a_special_file_is_refused_naming_what_it_is_and_its_mode(kind, what, tmp_path):
    archive = with_members((member("dev/null", kind, mode=0o666), None))
    assert [(r.reason, r.observed) for r in read_bundle_bytes(archive, "b.tar.gz").refusals] == [
        ("special-file", f"'dev/null' is {what} (mode 0666)")
    ]
    folder = tmp_path / "notes"
    for name, data in signed(plugin_files()).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    os.mkfifo(folder / "webapp/pipe", 0o600)
    assert [(r.reason, r.observed) for r in read_bundle_path(folder).refusals] == [
        ("special-file", "'webapp/pipe' is a FIFO (mode 0600)")
    ]
