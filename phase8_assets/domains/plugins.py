"""Plugin and bot verification: signature, files, trust, capabilities. Pure functions.

``verify`` lists *every* reason a bundle is refused, each belonging to one gate:
``plugin_signatures`` (who signed it and whether it is what they signed, as the bundle's
structure, its key's validity at the evaluation time and the approved versions allow) or
``plugin_capabilities`` (what it may do at its signer's trust level). The CLI and both gates
call it; a reason is decided here and nowhere else.

Capabilities are checked only once the signer is established (a key of the policy whose signature
verifies): an unsigned bundle has no trust level to compare with, and already fails the
signatures gate. Unknown capabilities are refused whatever the signer.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from phase8_assets.domains.gates import Finding
from phase8_assets.evidence.plugins import (
    CAPABILITIES,
    GRAFANA_MANIFEST,
    Bundle,
    TrustPolicy,
    canonical_manifest,
    parse_manifest,
    parse_signature,
    signature_valid,
)
from phase8_assets.evidence.upgrade import Version, parse_version
from phase8_assets.shared.clock import format_timestamp

SIGNATURES, CAPABILITY_GATE = "plugin_signatures", "plugin_capabilities"

# reason -> (gate, what it means): the refusal table of docs/security/plugin-signing.md.
REASONS: dict[str, tuple[str, str]] = {
    "unsigned": (SIGNATURES, "no MANIFEST or no MANIFEST.sig"),
    "manifest-invalid": (SIGNATURES, "MANIFEST or MANIFEST.sig cannot be parsed"),
    "unknown-key": (SIGNATURES, "signed by a key the trust policy does not list"),
    "bad-signature": (SIGNATURES, "the signature does not match the MANIFEST (the MANIFEST was edited)"),
    "revoked-key": (SIGNATURES, "signed by a revoked key"),
    "key-not-yet-valid": (SIGNATURES, "signed by a key before its not_before"),
    "key-expired": (SIGNATURES, "signed by a key past its not_after"),
    "publisher-mismatch": (
        SIGNATURES,
        "plugin.json names another publisher than the key's, or than another bundle of the plugin",
    ),
    "file-added": (SIGNATURES, "a file of the bundle is not in the MANIFEST"),
    "file-removed": (SIGNATURES, "a file of the MANIFEST is not in the bundle"),
    "file-changed": (SIGNATURES, "a file's SHA-256 differs from the MANIFEST"),
    "path-traversal": (SIGNATURES, "a path with '..'"),
    "absolute-path": (SIGNATURES, "an absolute path or a drive letter"),
    "path-not-utf8": (SIGNATURES, "a path that is not UTF-8 (a name in another encoding)"),
    "symlink": (SIGNATURES, "a symlink or hard link"),
    "special-file": (SIGNATURES, "a device, FIFO or socket, or a setuid/setgid file"),
    "world-writable": (SIGNATURES, "a file or folder anyone may write (mode o+w)"),
    "duplicate-path": (SIGNATURES, "the same path twice in the archive"),
    "path-collision": (SIGNATURES, "two paths macOS or Windows take for one file (case), or a file that is a folder"),
    "too-many-files": (SIGNATURES, "more files than the limit (from the tar headers)"),
    "file-too-large": (SIGNATURES, "a file larger than the per-file limit (from the tar headers)"),
    "bundle-too-large": (SIGNATURES, "more bytes than the total limit (headers, or the gzip stream)"),
    "platform-file-added": (SIGNATURES, "a file of a Grafana plugin's folder is not in its MANIFEST.txt"),
    "platform-file-removed": (SIGNATURES, "a file of a Grafana MANIFEST.txt is not in the bundle"),
    "platform-file-changed": (SIGNATURES, "a file's SHA-256 differs from its Grafana MANIFEST.txt"),
    "rollback": (SIGNATURES, "a version below the last approved one"),
    "resigned": (SIGNATURES, "the approved version (or another bundle of it) with different content"),
    "unknown-capability": (CAPABILITY_GATE, "a capability or platform permission outside the vocabulary"),
    "capability-above-trust": (CAPABILITY_GATE, "a capability the signer's trust level may not request"),
    "egress-not-allowed": (CAPABILITY_GATE, "egress to a host the trust level does not allow"),
    "server-version": (CAPABILITY_GATE, "a min_server_version above the release (or one Mattermost cannot read)"),
}


@dataclass(frozen=True)
class Problem:
    reason: str
    observed: str
    limit: str

    @property
    def gate(self) -> str:
        return REASONS[self.reason][0]


@dataclass
class Verification:
    bundle: Bundle
    signer: str | None = None  # key id
    publisher: str | None = None
    trust: str | None = None  # the key's level, once its signature verifies
    signature: str = "missing"  # missing | invalid | unknown key | valid
    files_intact: bool | None = None
    manifest_sha256: str | None = None
    requested: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "refused" if self.problems else "verified"

    def problems_of(self, gate: str) -> list[Problem]:
        return [p for p in self.problems if p.gate == gate]


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(p == "*" or host == p or (p.startswith("*.") and fnmatch.fnmatchcase(host, p)) for p in patterns)


def verify(
    bundle: Bundle, policy: TrustPolicy, at: datetime, peers: list[Bundle] = (), release: Version | None = None
) -> Verification:
    """Every reason to refuse ``bundle`` under ``policy`` at ``at``; ``peers``: the other bundles of the root;
    ``release``: the server release it must run on (None: not checked)."""
    v = Verification(bundle)
    v.problems += [Problem(r.reason, r.observed, r.limit) for r in bundle.refusals]
    if bundle.refusals:
        return v
    entries = _signature(v, bundle, policy, at)
    if entries is not None:
        _files(v, bundle, entries)
        _versions(v, bundle, policy, peers)
        _publishers(v, bundle, peers)
    _platform_files(v, bundle)
    _capabilities(v, bundle, policy)
    if release is not None:
        _server_version(v, bundle, release)
    return v


# SemVer as Mattermost parses min_server_version (blang/semver Parse, Masterminds StrictNewVersion):
# MAJOR.MINOR.PATCH without a 'v' or leading zeros; anything else and the server refuses to start the plugin.
_IDS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_STRICT_SEMVER = re.compile(rf"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-{_IDS})?(?:\+{_IDS})?")


def _server_version(v: Verification, bundle: Bundle, release: Version) -> None:
    """A plugin that needs a newer server than the release fails to start after the upgrade: Mattermost
    compares its ``min_server_version`` with its own version before it activates the plugin, and
    refuses one it cannot parse. The release's own version counts, not its pre-release tag (a
    release candidate reports the version it will ship as)."""
    if not bundle.plugin:
        return
    core = Version(release.major, release.minor, release.patch)
    needs = [("plugin.json min_server_version", bundle.min_server_version)]
    platform = bundle.platform
    if platform is not None and platform.min_server_version not in (None, ""):  # "": Mattermost checks none
        where, raw = f"min_server_version of {platform.path}", platform.min_server_version
        if not (isinstance(raw, str) and _STRICT_SEMVER.fullmatch(raw)):
            v.problems.append(Problem("server-version", f"{where} is {raw!r}, which Mattermost cannot parse (it "
                                      "refuses to start the plugin)", f"MAJOR.MINOR.PATCH, at most the release {core}"))  # fmt: skip
        else:
            needs.append((where, parse_version(raw, where)))
    for where, needed in needs:
        if needed is not None and core < needed:
            v.problems.append(Problem("server-version", f"{where} {needed}: the plugin needs a newer server",
                                      f"at most the release {core} (release.version)"))  # fmt: skip


def _signature(v: Verification, bundle: Bundle, policy: TrustPolicy, at: datetime) -> dict[str, str] | None:
    """Check the signature; return the MANIFEST's entries when it can be parsed."""
    if bundle.manifest is None or bundle.signature is None:
        missing = " and ".join(
            n for n, d in (("MANIFEST", bundle.manifest), ("MANIFEST.sig", bundle.signature)) if d is None
        )
        v.problems.append(Problem("unsigned", f"no {missing}", "a MANIFEST signed by a trusted key"))
        return None
    try:
        entries = parse_manifest(bundle.manifest)
        key_id, _ = parse_signature(bundle.signature)
    except ValueError as exc:
        v.problems.append(Problem("manifest-invalid", str(exc), "a MANIFEST and signature in the documented format"))
        return None
    v.signer, v.manifest_sha256 = key_id, hashlib.sha256(canonical_manifest(entries)).hexdigest()
    key = policy.keys.get(key_id)
    if key is None:
        v.signature = "unknown key"
        v.problems.append(Problem("unknown-key", f"signed by key {key_id}", "a key of the trust policy"))
        return entries
    v.publisher = key.publisher
    if not signature_valid(key.public_key, bundle.manifest, parse_signature(bundle.signature)[1]):
        v.signature = "invalid"
        v.problems.append(Problem("bad-signature", f"the signature of key {key_id} does not match the MANIFEST",
                                  "a signature over the MANIFEST as shipped"))  # fmt: skip
        return entries
    v.signature, v.trust = "valid", key.trust
    if key.revoked:
        v.problems.append(
            Problem("revoked-key", f"key {key_id} ({key.publisher}) is revoked: {key.revoked}", "an unrevoked key")
        )
    if at < key.not_before:
        v.problems.append(Problem("key-not-yet-valid", f"key {key_id} is valid from {format_timestamp(key.not_before)}",
                                  f"valid at {format_timestamp(at)}"))  # fmt: skip
    if at >= key.not_after:
        v.problems.append(Problem("key-expired", f"key {key_id} expired {format_timestamp(key.not_after)}",
                                  f"valid at {format_timestamp(at)}"))  # fmt: skip
    if bundle.plugin.get("publisher") != key.publisher:
        v.problems.append(Problem("publisher-mismatch", f"plugin.json says {bundle.plugin.get('publisher')!r}",
                                  f"the key's publisher {key.publisher!r}"))  # fmt: skip
    return entries


def _files(v: Verification, bundle: Bundle, entries: dict[str, str]) -> None:
    added = sorted(set(bundle.files) - set(entries))
    removed = sorted(set(entries) - set(bundle.files))
    changed = sorted(p for p in set(entries) & set(bundle.files) if entries[p] != bundle.files[p])
    for reason, paths, observed in (("file-added", added, "not in the MANIFEST"), ("file-removed", removed, "in the MANIFEST, not in the bundle"),
                                    ("file-changed", changed, "SHA-256 differs from the MANIFEST")):  # fmt: skip
        for path in paths:
            v.problems.append(Problem(reason, f"{path}: {observed}", "every file exactly as signed"))
    v.files_intact = not (added or removed or changed)


def _platform_files(v: Verification, bundle: Bundle) -> None:
    """Each Grafana ``MANIFEST.txt`` against the files of its folder, as Grafana checks them before it
    loads the plugin (any other ``MANIFEST.txt`` below is skipped, as Grafana does). Our signature
    covers the list; a list that does not match what ships is a plugin Grafana refuses to load, or
    one whose reviewed file list is not what it runs."""
    for path, listed in sorted(bundle.grafana.items()):
        folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
        present = {p: h for p, h in bundle.files.items() if p.startswith(folder) and p != path
                   and (p in listed or p.rsplit("/", 1)[-1] != GRAFANA_MANIFEST)}  # fmt: skip
        added = sorted(set(present) - set(listed))
        removed = sorted(set(listed) - set(present))
        changed = sorted(p for p in set(listed) & set(present) if listed[p] != present[p])
        for reason, paths, observed in (("platform-file-added", added, f"not in {path}"),
                                        ("platform-file-removed", removed, f"in {path}, not in the bundle"),
                                        ("platform-file-changed", changed, f"SHA-256 differs from {path}")):  # fmt: skip
            for file in paths:
                v.problems.append(Problem(reason, f"{file}: {observed}", f"every file of {folder or 'the bundle'} "
                                          f"exactly as {path} lists it"))  # fmt: skip


def _versions(v: Verification, bundle: Bundle, policy: TrustPolicy, peers: list[Bundle]) -> None:
    approved = policy.approved.get(bundle.plugin_id)
    if approved is not None and bundle.version < approved.version:
        v.problems.append(Problem("rollback", f"version {bundle.version}", f">= the approved {approved.version}"))
    elif (
        approved is not None
        and bundle.version == approved.version
        and approved.manifest_sha256 not in (None, v.manifest_sha256)
    ):
        v.problems.append(Problem("resigned", f"{bundle.version} with MANIFEST {v.manifest_sha256[:16]}",
                                  f"the approved MANIFEST {approved.manifest_sha256[:16]}"))  # fmt: skip
        return
    for peer in peers:
        if (
            peer is bundle
            or peer.plugin_id != bundle.plugin_id
            or peer.version != bundle.version
            or peer.manifest is None
        ):
            continue
        try:
            digest = hashlib.sha256(canonical_manifest(parse_manifest(peer.manifest))).hexdigest()
        except ValueError:
            continue
        if digest != v.manifest_sha256:
            v.problems.append(Problem("resigned", f"{bundle.version} also in {peer.source} with other content",
                                      "one content per version"))  # fmt: skip
            return


def _publishers(v: Verification, bundle: Bundle, peers: list[Bundle]) -> None:
    """One plugin id, one publisher: a bundle of the plugin from another publisher (signed by that
    publisher's own key, so its signature verifies) would take over what the tenants enabled, and
    which of the two is installed depends on the installer, not on a review. Both are refused."""
    publisher = bundle.plugin.get("publisher")
    others = sorted({(p.plugin.get("publisher"), p.source) for p in peers
                     if p is not bundle and p.plugin_id == bundle.plugin_id and p.plugin.get("publisher") != publisher})  # fmt: skip
    for other, source in others:
        v.problems.append(Problem("publisher-mismatch", f"plugin.json says {publisher!r}, {source} publishes "
                                  f"{bundle.plugin_id} as {other!r}", "one publisher per plugin id"))  # fmt: skip


def requested_capabilities(bundle: Bundle) -> list[tuple[str, str | None]]:
    """(where it was asked for, our capability or None when it has no mapping)."""
    out = [(f"capability {c}", c if c in CAPABILITIES else None) for c in bundle.plugin.get("capabilities") or []]
    if bundle.platform is not None:
        out += [(f"{what} ({bundle.platform.path})", ours) for what, ours in bundle.platform.permissions]
    return out


def _capabilities(v: Verification, bundle: Bundle, policy: TrustPolicy) -> None:
    if not bundle.plugin:
        return
    requested = requested_capabilities(bundle)
    v.requested = sorted({c for _, c in requested if c})
    for what, ours in requested:
        if ours is None:
            v.problems.append(Problem("unknown-capability", f"{what} has no phase8 capability",
                                      "a capability of the vocabulary (docs/security/plugin-signing.md)"))  # fmt: skip
    level = policy.levels.get(v.trust) if v.trust else None
    if level is None:
        return
    v.allowed = sorted(level.capabilities)
    for capability in v.requested:
        if capability not in level.capabilities:
            v.problems.append(Problem("capability-above-trust", f"requests {capability}",
                                      f"{v.trust} may request {', '.join(v.allowed) or 'nothing'}"))  # fmt: skip
    hosts = list(bundle.plugin.get("egress") or []) + list(bundle.platform.egress if bundle.platform else ())
    for host in dict.fromkeys(hosts):
        if not host_allowed(host, level.egress):
            v.problems.append(Problem("egress-not-allowed", f"egress to {host}",
                                      f"{v.trust} may reach {', '.join(level.egress) or 'no host'}"))  # fmt: skip


def gate_findings(
    gate: str, verifications: list[Verification], policy: TrustPolicy, owner: str, runbook: str, policy_uri: str | None
) -> list[Finding]:
    """Findings of ``gate`` for every bundle of a plugin some tenant enables (and of every bundle that
    could not be opened far enough to know its plugin), and for enabled plugins without a bundle
    (whose evidence is the policy ``policy_uri`` that enables them)."""
    out = []
    enabled = set(policy.enabled)
    for v in verifications:
        plugin_id = v.bundle.plugin_id
        if plugin_id is not None and plugin_id not in enabled:
            continue
        details = {"tenants": policy.tenants_of(plugin_id) if plugin_id else [], "signer": v.signer, "trust": v.trust}
        for p in v.problems_of(gate):
            out.append(
                Finding(
                    "error", v.bundle.subject, p.reason, p.observed, p.limit, v.bundle.source, owner, runbook, details
                )
            )
    if gate == SIGNATURES:
        present = {v.bundle.plugin_id for v in verifications}
        for plugin_id in sorted(enabled - present):
            out.append(Finding("error", plugin_id, "bundle-present", "enabled, but no bundle in the evidence",
                               "a signed bundle of every enabled plugin", policy_uri, owner, runbook,
                               {"tenants": policy.tenants_of(plugin_id)}))  # fmt: skip
    return out
