"""Plugin and bot bundles, their Ed25519 keys and the trust policy (``kind: PluginTrustPolicy``).

A bundle is a folder or a ``.tar.gz`` holding ``plugin.json`` (``kind: PluginManifest``), the
plugin's files, ``MANIFEST`` (one ``<sha256 hex>  <path>`` line per file) and ``MANIFEST.sig`` (one
line ``ed25519 <key id> <base64 signature>``), the detached signature over the *canonical* MANIFEST:
UTF-8 in NFC, LF line endings, ``/`` separators, lines sorted by path. A MANIFEST written with CRLF,
backslashes or NFD names therefore verifies; any change to a hash or a path does not.

Reading a bundle decides nothing about trust: it refuses what must not be unpacked (paths leaving
the bundle, absolute paths, paths that are not UTF-8, paths that macOS or Windows take for one
file, links, special files, modes anyone may write, more files or bytes than the limits, all
checked from the tar headers before any file is read) and otherwise returns the files' hashes, the MANIFEST, the signature and the manifest.
``domains/plugins.py`` verifies. An archive that is not a gzip tar (or has more than zero padding
after its last readable member, which another tar reader would extract), or a bundle without a
valid ``plugin.json``, is unusable: ``EvidenceError``.

``platform_manifest`` maps the permission vocabularies of the platforms teams already publish for
(Slack app manifests, Mattermost Apps and plugins, Grafana's ``plugin.json`` and ``MANIFEST.txt``) onto ours; a
permission without a mapping is kept as unknown, so the verifier refuses it instead of ignoring it.
A Grafana ``MANIFEST.txt`` asks for no permission but lists its plugin's files, which the verifier
compares with what the bundle ships.
The hosts a platform sends data to for the app (a Mattermost App's root URL, a Slack app's request
URLs) are its egress, checked like the egress ``plugin.json`` declares.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import unicodedata
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from phase8_assets.evidence import (
    EvidenceError,
    ReadResult,
    artifact_time,
    json_document,
    load_artifact,
    mapping,
    review_time_warnings,
    sequence,
    strings,
)
from phase8_assets.evidence.upgrade import Version, parse_version
from phase8_assets.shared.yaml_loader import YamlError, load_yaml

PLUGIN_JSON = "plugin.json"
MANIFEST = "MANIFEST"
SIGNATURE = "MANIFEST.sig"
GRAFANA_MANIFEST = "MANIFEST.txt"
TRUST_LEVELS = ("core", "verified", "community", "private")

# Our capability vocabulary. A manifest or policy naming anything else is refused.
CAPABILITIES = {
    "read:messages": "read posts in the channels it is added to",
    "post:messages": "create and edit its own posts",
    "read:channels": "list channels and their members",
    "read:users": "read user profiles (names, emails)",
    "commands": "register slash commands",
    "ui:extend": "add web app components (buttons, menus, panels)",
    "act_as_bot": "act as its own bot account",
    "act_as_user": "act on behalf of the users who connect it",
    "webhooks:inbound": "receive HTTP requests from outside",
    "webhooks:outbound": "call external services on events",
    "files:read": "read uploaded files",
    "files:write": "upload files",
    "admin:settings": "read and change system settings",
    "server:execute": "run its own server process with the full plugin API",
}


@dataclass(frozen=True)
class BundleLimits:
    """Checked from the tar headers (or the folder's ``stat``) before any file is read."""

    max_files: int = 2000
    max_file_bytes: int = 32 * 1024 * 1024
    max_total_bytes: int = 128 * 1024 * 1024

    @property
    def max_archive_bytes(self) -> int:
        """Uncompressed tar stream: the payload plus one header and padding per file, plus the end blocks."""
        return self.max_total_bytes + self.max_files * 2048 + 20480


@dataclass(frozen=True)
class Refusal:
    """A bundle that must not be unpacked; ``reason`` is one of ``domains.plugins.REASONS``."""

    reason: str
    observed: str
    limit: str


@dataclass(frozen=True)
class PlatformManifest:
    """A platform's own manifest mapped onto our capabilities: (their permission, ours or None)."""

    format: str
    path: str
    permissions: tuple[tuple[str, str | None], ...]
    egress: tuple[str, ...] = ()
    # a Mattermost plugin's min_server_version as written (None: it names none, so Mattermost checks none)
    min_server_version: object = None
    # the files a Mattermost plugin runs: (field, path relative to the manifest's folder, as written)
    files: tuple[tuple[str, str], ...] = ()


@dataclass
class Bundle:
    source: str
    refusals: list[Refusal] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256, without MANIFEST and MANIFEST.sig
    manifest: bytes | None = None
    signature: bytes | None = None
    plugin: dict = field(default_factory=dict)
    version: Version | None = None
    min_server_version: Version | None = None  # plugin.json's: the oldest server release it runs on
    platform: PlatformManifest | None = None
    # each Grafana MANIFEST.txt of the bundle -> the files it lists (path in the bundle -> sha256)
    grafana: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def plugin_id(self) -> str | None:
        return self.plugin.get("id")

    @property
    def subject(self) -> str:
        if self.plugin_id:
            return f"{self.plugin_id} {self.plugin['version']}"
        return self.source.rsplit("/", 1)[-1]


# --- keys -------------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of the public key's DER (SubjectPublicKeyInfo)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def generate_key(seed: bytes | None = None) -> Ed25519PrivateKey:
    """A new key; from a 32-byte ``seed`` the same key every time (the demo's keys)."""
    return Ed25519PrivateKey.from_private_bytes(seed) if seed is not None else Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise EvidenceError(where, f"expected an unencrypted PEM PKCS#8 private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(where, f"expected an Ed25519 private key, got {type(key).__name__}")
    return key


def load_public_key(data: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise EvidenceError(where, f"expected a PEM SubjectPublicKeyInfo public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError(where, f"expected an Ed25519 public key, got {type(key).__name__}")
    return key


# --- the canonical MANIFEST -------------------------------------------------------------------

_LINE = re.compile(r"^([0-9A-Fa-f]{64})[ \t]+(\S.*?)\s*$")


def normal_path(name: str) -> str:
    """NFC, ``/`` separators, no ``./`` prefix: the one spelling of a path inside a bundle."""
    path = unicodedata.normalize("NFC", name).replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path.rstrip("/")


def path_refusal(path: str) -> Refusal | None:
    """Why ``path`` (already normal) may not be in a bundle: absolute, a drive, or ``..``."""
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return Refusal("absolute-path", f"{path!r} is absolute", "a path relative to the bundle")
    if ".." in path.split("/"):
        return Refusal("path-traversal", f"{path!r} leaves the bundle", "no '..' component")
    return None


def parse_manifest(data: bytes) -> dict[str, str]:
    """MANIFEST lines -> {path: sha256}; harmless differences (CRLF, ``\\``, NFD, case of hex) normalised."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from exc
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"line {number}: expected '<sha256 hex>  <path>', got {line[:80]!r}")
        path = normal_path(match.group(2))
        if (refusal := path_refusal(path)) is not None:
            raise ValueError(f"line {number}: {refusal.observed}")
        if path in entries or path in (MANIFEST, SIGNATURE):
            raise ValueError(f"line {number}: {path!r} listed twice or names the MANIFEST itself")
        entries[path] = match.group(1).lower()
    return entries


def canonical_manifest(entries: dict[str, str]) -> bytes:
    return "".join(f"{entries[p]}  {p}\n" for p in sorted(entries)).encode("utf-8")


def manifest_for(files: dict[str, bytes]) -> bytes:
    """The canonical MANIFEST of ``files`` (path -> content; MANIFEST and MANIFEST.sig left out)."""
    entries = {
        normal_path(p): hashlib.sha256(b).hexdigest() for p, b in files.items() if p not in (MANIFEST, SIGNATURE)
    }
    return canonical_manifest(entries)


def sign_manifest(key: Ed25519PrivateKey, manifest: bytes) -> bytes:
    """``MANIFEST.sig`` for ``manifest`` (signed in its canonical form)."""
    canonical = canonical_manifest(parse_manifest(manifest))
    signature = base64.b64encode(key.sign(canonical)).decode("ascii")
    return f"ed25519 {key_id(key.public_key())} {signature}\n".encode("ascii")


def parse_signature(data: bytes) -> tuple[str, bytes]:
    """``MANIFEST.sig`` -> (key id, raw signature); ``ValueError`` naming what is wrong."""
    parts = data.decode("ascii", errors="replace").split()
    if len(parts) != 3 or parts[0] != "ed25519" or not re.fullmatch(r"[0-9a-f]{16}", parts[1]):
        raise ValueError("expected one line 'ed25519 <16 hex key id> <base64 signature>'")
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except ValueError as exc:
        raise ValueError(f"signature is not base64: {exc}") from exc
    if len(raw) != 64:
        raise ValueError(f"an Ed25519 signature has 64 bytes, got {len(raw)}")
    return parts[1], raw


def signature_valid(public_key: Ed25519PublicKey, manifest: bytes, signature: bytes) -> bool:
    try:
        public_key.verify(signature, canonical_manifest(parse_manifest(manifest)))
    except (InvalidSignature, ValueError):
        return False
    return True


# --- reading bundles --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One member of a bundle as its header (or ``lstat``) describes it, before anything is read."""

    name: str
    kind: str  # file | dir | symlink | hardlink | special
    size: int
    target: str = ""
    mode: int = 0
    special: str = ""  # what a special file is: a character device, a block device, a FIFO, a socket


def _same_file_key(path: str) -> str:
    """One key for every spelling of ``path`` (already normal) that some file system takes for the same
    file: macOS (APFS, HFS+) and Windows (NTFS, exFAT) ignore case and Unicode normalisation, Windows
    drops trailing dots and spaces, and every file system reads ``a//b`` and ``a/./b`` as ``a/b``."""
    parts = [part.rstrip(". ") for part in path.split("/") if part not in ("", ".")]
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", "/".join(parts)).upper().casefold())


def _collisions(files: list[str], folders: set[str]) -> list[Refusal]:
    """Files that land on another file, or on a folder, once unpacked: which one the platform runs
    depends on the file system and the order of extraction, not on what was reviewed."""
    out, keys = [], {}
    folder_keys = {_same_file_key(f): f for f in sorted(folders)}
    folder_keys |= {_same_file_key(p.rsplit("/", n)[0]): p.rsplit("/", n)[0]
                    for p in files for n in range(1, p.count("/") + 1)}  # fmt: skip
    for path in files:
        key = _same_file_key(path)
        if key in keys and keys[key] != path:
            out.append(Refusal("path-collision", f"{path!r} and {keys[key]!r} unpack to one file where names ignore "
                               "case and Unicode normalisation (macOS, Windows)", "paths that differ in more than "
                               "case, Unicode normalisation, trailing dots and spaces or empty components"))  # fmt: skip
        elif key in folder_keys:
            out.append(Refusal("path-collision", f"{path!r} is a file and {folder_keys[key]!r} a folder",
                               "a path is either a file or a folder"))  # fmt: skip
        keys.setdefault(key, path)
    return out


def _structure(entries: list[_Entry], limits: BundleLimits) -> list[Refusal]:
    refusals, seen, folders, files, total = [], {}, set(), 0, 0
    for entry in entries:
        path = normal_path(entry.name)
        if not _utf8(path):  # tar and os hand back bytes that are not UTF-8 as lone surrogates
            shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            refusals.append(Refusal("path-not-utf8", f"'{shown}' is not UTF-8 (a name in another encoding)",
                                    "UTF-8 paths, as the MANIFEST names every file"))  # fmt: skip
            continue
        if (refusal := path_refusal(path)) is not None:
            refusals.append(refusal)
            continue
        if entry.kind in ("symlink", "hardlink"):
            what = "symlink" if entry.kind == "symlink" else "hard link"
            refusals.append(Refusal("symlink", f"{path!r} is a {what} to {entry.target!r}", "regular files only"))
            continue
        if entry.kind == "special":
            refusals.append(Refusal("special-file", f"{path!r} is {entry.special or 'not a regular file'} (mode "
                                    f"{entry.mode & 0o7777:04o})", "regular files only"))  # fmt: skip
            continue
        if entry.mode & stat.S_IWOTH:  # not signed either, and kept by tar as root: anyone could swap the code
            refusals.append(Refusal("world-writable", f"{path!r} has mode {entry.mode & 0o7777:04o} (anyone may "
                                    "write it)", "no write permission for others"))  # fmt: skip
        if entry.kind == "dir":
            folders.add(path)
            continue
        if entry.mode & (stat.S_ISUID | stat.S_ISGID):  # not signed (the MANIFEST hashes contents), kept by tar as root
            refusals.append(Refusal("special-file", f"{path!r} has mode {entry.mode & 0o7777:04o} (setuid/setgid)",
                                    "no setuid or setgid bit"))  # fmt: skip
        if path in seen:
            spellings = f" (as {seen[path]!r} and {entry.name!r})" if seen[path] != entry.name else ""
            refusals.append(Refusal("duplicate-path", f"{path!r} appears twice{spellings}", "each path once"))
        seen.setdefault(path, entry.name)
        files, total = files + 1, total + entry.size
        if (limit := _limit_refusal(path, entry.size, files, total, limits)) is not None:
            refusals.append(limit)
            return refusals
    return refusals + _collisions(list(seen), folders)


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _limit_refusal(path: str, size: int, files: int, total: int, limits: BundleLimits) -> Refusal | None:
    if files > limits.max_files:
        return Refusal("too-many-files", f"more than {limits.max_files} entries", f"<= {limits.max_files} files")
    if size > limits.max_file_bytes:
        return Refusal("file-too-large", f"{path!r} has {size} bytes", f"<= {limits.max_file_bytes} bytes per file")
    if total > limits.max_total_bytes:
        return Refusal("bundle-too-large", f"more than {limits.max_total_bytes} bytes in files",
                       f"<= {limits.max_total_bytes} bytes in all")  # fmt: skip
    return None


def _inflate(data: bytes, limit: int, keep: bool) -> tuple[int, bytes]:
    """Inflate every gzip member of ``data`` 1 MiB at a time: (bytes out, the bytes when ``keep``).
    Stops as soon as more than ``limit`` bytes came out."""
    out, rest, size = [], data, 0
    while rest and size <= limit:
        inflater, pending = zlib.decompressobj(wbits=31), rest
        while not inflater.eof and size <= limit:
            chunk = inflater.decompress(pending, 1 << 20)
            if not chunk and len(inflater.unconsumed_tail) == len(pending):
                raise zlib.error("the gzip stream is truncated")
            size += len(chunk)
            pending = inflater.unconsumed_tail
            if keep:
                out.append(chunk)
        rest = inflater.unused_data
    return size, b"".join(out)


def _gunzip(data: bytes, limit: int) -> bytes | None:
    """The tar stream inside ``data``, or None when it is longer than ``limit`` (a gzip bomb). The
    length is measured first without keeping anything, so a bomb costs time, not memory."""
    if _inflate(data, limit, keep=False)[0] > limit:
        return None
    return _inflate(data, limit, keep=True)[1]


_TAR_SPECIAL = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device", tarfile.FIFOTYPE: "a FIFO"}
_STAT_SPECIAL = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
                 (stat.S_ISSOCK, "a socket"))  # fmt: skip


def _tar_special(member: tarfile.TarInfo) -> str:
    return _TAR_SPECIAL.get(member.type, f"a tar entry of type {member.type.decode('latin-1')!r}")


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isdir():
        return "dir"
    return "file" if member.isreg() else "special"


Contents = tuple[dict[str, bytes] | None, list[Refusal]]


def _from_tar(data: bytes, limits: BundleLimits) -> Contents:
    try:
        raw = _gunzip(data, limits.max_archive_bytes)
    except zlib.error as exc:
        raise EvidenceError("(archive)", f"expected a gzip-compressed tar archive (.tar.gz): {exc}") from exc
    if raw is None:
        return None, [Refusal("bundle-too-large", f"more than {limits.max_archive_bytes} bytes uncompressed",
                              f"<= {limits.max_archive_bytes} bytes of tar")]  # fmt: skip
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            members, files, total = [], 0, 0
            while (member := tar.next()) is not None:  # each header checked before the next one is read
                members.append(member)
                size = member.size if member.isreg() else 0
                files, total = files + 1, total + size
                limit = _limit_refusal(normal_path(member.name), size, files, total, limits)
                if limit is not None:  # directories count as entries too: no header goes unchecked
                    return None, [limit]
            if raw[tar.offset :].strip(b"\0"):  # tarfile stops quietly at a damaged header; GNU tar skips it
                raise EvidenceError("(archive)", f"data after byte {tar.offset}, where the readable members end (a "
                                    "damaged header, or members past the end-of-archive marker that other tar "
                                    "readers extract); expected only zero padding")  # fmt: skip
            refusals = _structure([_Entry(m.name, _tar_kind(m), m.size, m.linkname, m.mode, _tar_special(m))
                                   for m in members], limits)  # fmt: skip
            if refusals:
                return None, refusals
            return {normal_path(m.name): tar.extractfile(m).read() for m in members if m.isreg()}, []
    except tarfile.TarError as exc:
        raise EvidenceError("(archive)", f"expected a tar archive inside the gzip stream: {exc}") from exc


def _from_folder(folder: Path, limits: BundleLimits) -> Contents:
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                entries.append(_Entry(rel, "symlink", 0, os.readlink(path)))
            elif stat.S_ISDIR(info.st_mode):
                entries.append(_Entry(rel, "dir", 0, mode=info.st_mode))
            else:
                kind = "file" if stat.S_ISREG(info.st_mode) else "special"
                special = next((what for test, what in _STAT_SPECIAL if test(info.st_mode)), "")
                entries.append(_Entry(rel, kind, info.st_size, mode=info.st_mode, special=special))
    refusals = _structure(entries, limits)
    if refusals:
        return None, refusals
    return {normal_path(e.name): (folder / e.name).read_bytes() for e in entries if e.kind == "file"}, []


def _contents(path: Path, limits: BundleLimits) -> Contents:
    if path.is_dir():
        return _from_folder(path, limits)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvidenceError("(file)", f"cannot read {path}: {exc.strerror}") from exc
    return _from_tar(data, limits)


def read_bundle_bytes(data: bytes, uri: str, limits: BundleLimits = BundleLimits()) -> Bundle:
    """A ``.tar.gz`` bundle; ``EvidenceError`` when it is unusable."""
    return _assemble(uri, *_from_tar(data, limits))


def read_bundle_path(path: Path, limits: BundleLimits = BundleLimits()) -> Bundle:
    """A bundle folder or ``.tar.gz`` file (the CLI's input)."""
    return _assemble(path.as_posix(), *_contents(path, limits))


def load_contents(path: Path, limits: BundleLimits = BundleLimits()) -> dict[str, bytes]:
    """Every file of a bundle folder or ``.tar.gz`` (to sign it); a refused structure is an ``EvidenceError``."""
    contents, refusals = _contents(path, limits)
    if refusals:
        raise EvidenceError(refusals[0].reason, f"{refusals[0].observed}; expected {refusals[0].limit}")
    _assemble(path.as_posix(), dict(contents), [])
    return contents


def _assemble(uri: str, contents: dict[str, bytes] | None, refusals: list[Refusal]) -> Bundle:
    bundle = Bundle(uri, refusals=refusals)
    if contents is None:
        return bundle
    if PLUGIN_JSON not in contents:
        raise EvidenceError(PLUGIN_JSON, "is required at the top of a bundle (kind: PluginManifest)")
    try:
        bundle.plugin = load_artifact(contents[PLUGIN_JSON], f"{uri}!{PLUGIN_JSON}", "PluginManifest")
    except EvidenceError as exc:
        raise EvidenceError(f"{PLUGIN_JSON}: {exc.field}", exc.reason) from exc
    bundle.version = parse_version(bundle.plugin["version"], f"{PLUGIN_JSON}: version")
    bundle.min_server_version = parse_version(bundle.plugin["min_server_version"], f"{PLUGIN_JSON}: min_server_version")
    for name, entry in sorted((bundle.plugin.get("entry_points") or {}).items()):
        if normal_path(entry) not in contents:
            raise EvidenceError(f"{PLUGIN_JSON}: entry_points.{name}", f"{entry!r} is not a file of the bundle")
    if bundle.plugin.get("platform_manifest"):
        name = normal_path(bundle.plugin["platform_manifest"])
        if name not in contents:
            raise EvidenceError(f"{PLUGIN_JSON}: platform_manifest", f"{name!r} is not a file of the bundle")
        bundle.platform = platform_manifest(contents[name], name)
        _mattermost_files_present(bundle.platform, contents)
    _no_undeclared_platform_manifest(contents, bundle.platform)
    bundle.grafana = _grafana_lists(contents, bundle.platform)
    bundle.manifest = contents.pop(MANIFEST, None)
    bundle.signature = contents.pop(SIGNATURE, None)
    bundle.files = {p: hashlib.sha256(b).hexdigest() for p, b in sorted(contents.items())}
    return bundle


# Names platforms give their manifests; a nested plugin.json is the Mattermost plugin's own (ours is at the top).
PLATFORM_FILE_NAMES = frozenset({"manifest.json", "manifest.yml", "manifest.yaml", "plugin.json", "plugin.yml",
                                 "plugin.yaml", "MANIFEST.txt"})  # fmt: skip


def _no_undeclared_platform_manifest(contents: dict[str, bytes], declared: PlatformManifest | None) -> None:
    """A platform manifest the bundle ships but ``platform_manifest`` does not name is installed with it
    (Slack or Mattermost read its scopes and permissions) while its permissions would go unchecked. A
    file of such a name that is no platform's manifest (a web app's ``manifest.json``) is left alone."""
    for path in sorted(contents):
        if (
            path == PLUGIN_JSON
            or (declared and path == declared.path)
            or path.rsplit("/", 1)[-1] not in PLATFORM_FILE_NAMES
        ):
            continue
        try:
            found = platform_manifest(contents[path], path)
        except EvidenceError as exc:
            if not _platforms_of(contents[path], path):  # no platform's manifest (a web app's manifest.json)
                continue
            # A platform reads its own fields and ignores the rest: one that is unusable here (the fields
            # of two platforms, a URL we cannot place) is still installed with its permissions.
            raise EvidenceError(f"{PLUGIN_JSON}: platform_manifest", f"{path!r} is a platform manifest the bundle "
                                f"does not declare (declared: {declared.path if declared else 'none'}), and "
                                f"unusable: {exc.field}: {exc.reason}") from exc  # fmt: skip
        if not (found.permissions or found.egress):  # a Grafana MANIFEST.txt asks for nothing
            continue
        raise EvidenceError(
            f"{PLUGIN_JSON}: platform_manifest", f"{path!r} is a {found.format} manifest the bundle does not declare "
            f"(declared: {declared.path if declared else 'none'}); its permissions would not be checked"
        )  # fmt: skip


def _platforms_of(data: bytes, path: str) -> list[str]:
    """The platforms whose manifest fields ``data`` has (none when it is no JSON or YAML object)."""
    try:
        doc = load_yaml(data, path) if path.lower().endswith((".yml", ".yaml")) else json.loads(data)
    except (YamlError, ValueError):
        return []
    return _platforms(doc, path) if isinstance(doc, dict) else []


def _grafana_lists(contents: dict[str, bytes], declared: PlatformManifest | None) -> dict[str, dict[str, str]]:
    """Every Grafana ``MANIFEST.txt`` of the bundle (and the declared Grafana manifest, whatever its name)
    -> the files it lists, as paths of the bundle: Grafana reads them relative to the folder of
    ``MANIFEST.txt``, the plugin's folder. Grafana refuses a plugin whose files differ from its list,
    so the verifier compares them (``domains.plugins``) instead of trusting the list."""
    out = {}
    for path in sorted(contents):
        if not (
            (declared and declared.format == "grafana" and path == declared.path)
            or (path.rsplit("/", 1)[-1] == GRAFANA_MANIFEST and _clear_signed(contents[path]))
        ):
            continue
        folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
        out[path] = {folder + p: h for p, h in grafana_files(contents[path], path).items()}
    return out


def read_bundle(data: bytes, uri: str) -> ReadResult:
    """Reader of the ``plugin_bundles`` kind: one ``.tar.gz`` per bundle. A bundle carries no time of
    its own that anyone vouches for, so the kind is timeless (its trust policy carries ``reviewed``)."""
    bundle = read_bundle_bytes(data, uri)
    summary = {"plugin": bundle.plugin_id, "version": bundle.plugin.get("version"), "files": len(bundle.files),
               "refused": [r.reason for r in bundle.refusals]}  # fmt: skip
    return ReadResult(observed_at=None, timestamp_field="", summary=summary, records=[bundle])


def write_bundle(files: dict[str, bytes]) -> bytes:
    """A reproducible ``.tar.gz``: sorted names, fixed mtime/uid/gid/mode, gzip mtime 0."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(files[name]), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(files[name]))
    return _gzip(raw.getvalue())


def _gzip(data: bytes) -> bytes:
    """gzip with mtime 0 and no file name: the same bytes in, the same bytes out."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflater.compress(data) + deflater.flush()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + body + zlib.crc32(data).to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(4, "little")


# --- the trust policy -------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    publisher: str
    public_pem: bytes  # kept as PEM: key objects do not pickle, and Dagster pickles asset outputs
    trust: str
    not_before: datetime
    not_after: datetime
    revoked: str | None  # the reason, when revoked

    @property
    def public_key(self) -> Ed25519PublicKey:
        return load_public_key(self.public_pem, f"key {self.key_id}")


@dataclass(frozen=True)
class TrustLevel:
    capabilities: frozenset[str]
    egress: tuple[str, ...]  # hostnames or *.domain patterns


@dataclass(frozen=True)
class Approved:
    version: Version
    manifest_sha256: str | None


@dataclass
class TrustPolicy:
    keys: dict[str, TrustedKey]
    levels: dict[str, TrustLevel]
    tenants: dict[str, tuple[str, ...]]
    approved: dict[str, Approved]

    def tenants_of(self, plugin_id: str) -> list[str]:
        return sorted(t for t, plugins in self.tenants.items() if plugin_id in plugins)

    @property
    def enabled(self) -> list[str]:
        return sorted({p for plugins in self.tenants.values() for p in plugins})


def read_trust(data: bytes, uri: str) -> ReadResult:
    doc = load_artifact(data, uri, "PluginTrustPolicy")
    keys = {}
    for i, item in enumerate(doc["keys"]):
        where = f"keys[{i}]"
        pem = item["public_key"].encode("ascii", errors="replace")
        public = load_public_key(pem, f"{where}.public_key")
        if key_id(public) != item["key_id"]:
            raise EvidenceError(
                f"{where}.key_id", f"expected {key_id(public)} (from the public key), got {item['key_id']!r}"
            )
        if item["key_id"] in keys:
            raise EvidenceError(f"{where}.key_id", f"{item['key_id']} is listed twice")
        not_before, not_after = artifact_time(item, "not_before").at, artifact_time(item, "not_after").at
        if not_after <= not_before:
            raise EvidenceError(
                f"{where}.not_after", f"{item['not_after']} is not after not_before {item['not_before']}"
            )
        revoked = item.get("revoked")
        keys[item["key_id"]] = TrustedKey(item["key_id"], item["publisher"], pem, item["trust"], not_before, not_after,
                                          (revoked.get("reason") or "revoked") if revoked else None)  # fmt: skip
    levels = {}
    for name, level in doc["levels"].items():
        for j, capability in enumerate(level["capabilities"]):
            if capability not in CAPABILITIES:
                raise EvidenceError(f"levels.{name}.capabilities[{j}]", f"unknown capability {capability!r}; expected one "
                                    f"of {'|'.join(CAPABILITIES)}")  # fmt: skip
        levels[name] = TrustLevel(frozenset(level["capabilities"]), tuple(h.lower() for h in level.get("egress") or ()))
    missing = [level for level in TRUST_LEVELS if level not in levels]
    if missing:
        raise EvidenceError("levels", f"every trust level needs its capabilities; missing {', '.join(missing)}")
    approved = {
        plugin: Approved(parse_version(item["version"], f"approved.{plugin}.version"), item.get("manifest_sha256"))
        for plugin, item in (doc.get("approved") or {}).items()
    }
    tenants = {tenant: tuple(plugins) for tenant, plugins in (doc.get("tenants") or {}).items()}
    at = artifact_time(doc, "reviewed")
    policy = TrustPolicy(keys, levels, tenants, approved)
    return ReadResult(observed_at=at.at, timestamp_field="reviewed",
                      summary={"keys": len(keys), "enabled": policy.enabled}, records=[policy],
                      warnings=review_time_warnings("reviewed", doc["reviewed"], at))  # fmt: skip


# --- other platforms' manifests ---------------------------------------------------------------

SLACK_SCOPES = {
    "app_mentions:read": "read:messages",
    "channels:history": "read:messages",
    "groups:history": "read:messages",
    "im:history": "read:messages",
    "mpim:history": "read:messages",
    "reactions:read": "read:messages",
    "chat:write": "post:messages",
    "chat:write.public": "post:messages",
    "chat:write.customize": "post:messages",
    "reactions:write": "post:messages",
    "commands": "commands",
    "channels:read": "read:channels",
    "groups:read": "read:channels",
    "im:read": "read:channels",
    "mpim:read": "read:channels",
    "users:read": "read:users",
    "users:read.email": "read:users",
    "files:read": "files:read",
    "files:write": "files:write",
    "incoming-webhook": "webhooks:inbound",
    "admin": "admin:settings",
}
MATTERMOST_APP_PERMISSIONS = {
    "act_as_bot": "act_as_bot",
    "act_as_user": "act_as_user",
    "act_as_admin": "admin:settings",
    "remote_webhooks": "webhooks:inbound",
    "remote_oauth2": "webhooks:outbound",
}
MATTERMOST_APP_LOCATIONS = {"/command": "commands", "/channel_header": "ui:extend", "/post_menu": "ui:extend"}
MATTERMOST_PLUGIN_PARTS = {"server": "server:execute", "webapp": "ui:extend"}
# Grafana's plugin.json: its "type"; a backend plugin ("backend": true) runs its executable as a process
GRAFANA_PLUGIN_TYPES = frozenset({"panel", "datasource", "app", "renderer", "secretsmanager"})
GRAFANA_PLUGIN_PARTS = {'"backend": true': "server:execute"}  # the table in docs/security/plugin-signing.md


# platform -> whether a document has the fields only that platform's manifest has (``go``: its fields
# as Mattermost reads them, see ``go_fields``)
PLATFORM_KEYS = {
    "slack": lambda doc, go: "oauth_config" in doc or "display_information" in doc,
    "mattermost-app": lambda doc, go: "app_id" in go,
    "mattermost-plugin": lambda doc, go: "id" in go and bool({"server", "webapp"} & go.keys()),
    "grafana-plugin": lambda doc, go: "id" in go and go.get("type") in GRAFANA_PLUGIN_TYPES,
}


def _go_fold(name: str) -> str:
    """A JSON name as Go's ``encoding/json`` matches it to a struct field: ASCII letters in any case,
    another letter as the upper case of its lower case (so ``\u017f``, the long s, is an ``s``)."""
    out = []
    for char in name:
        folded = char.upper() if char.isascii() else char.lower().upper()
        out.append(folded if len(folded) == 1 else char)
    return "".join(out).lower()


def go_fields(doc: dict, path: str, where: str = "", strict: bool = True) -> dict:
    """The fields of a JSON object as Mattermost reads them, by their lower-case name: its server and
    its Apps plugin decode manifests with Go's ``encoding/json``, which matches a name to a field
    whatever its case, so ``"Server"`` is the plugin's server and ``"Requested_Permissions"`` the app's
    permissions. Two names Go takes for one field (``server`` and ``Server``) make the manifest
    unusable when ``strict``: Go keeps the last one, a reviewer may read either."""
    out, seen = {}, {}
    for key, value in doc.items():
        name = _go_fold(key)
        if name in seen and strict:
            raise EvidenceError(f"{path}: {where}{key}", f"{seen[name]!r} and {key!r} are one field to Mattermost "
                                "(Go reads JSON names whatever their case, the last one wins); expected each "
                                "field once")  # fmt: skip
        seen[name], out[name] = key, value
    return out


def _platforms(doc: dict, path: str) -> list[str]:
    """The platforms whose fields ``doc`` has. Mattermost reads a plugin.yaml with yaml.v2, which
    compares names exactly, and JSON as Go does."""
    go = doc if path.lower().endswith((".yml", ".yaml")) else go_fields(doc, path, strict=False)
    return [name for name, keys in PLATFORM_KEYS.items() if keys(doc, go)]


def platform_manifest(data: bytes, path: str) -> PlatformManifest:
    """A Slack app manifest, a Mattermost App or plugin manifest (JSON, or YAML in a ``.yml`` or
    ``.yaml`` file, as Slack and Mattermost both accept), or a Grafana ``MANIFEST.txt``."""
    if _clear_signed(data):
        grafana_files(data, path)
        return PlatformManifest("grafana", path, ())
    if path.lower().endswith((".yml", ".yaml")):
        try:
            doc = load_yaml(data, path)
        except YamlError as exc:
            raise EvidenceError(path, f"expected a platform manifest in YAML: {str(exc).split(': ', 1)[-1]}") from exc
    else:
        try:
            doc = json_document(data.decode("utf-8-sig"))
        except EvidenceError as exc:
            raise EvidenceError(path, exc.reason) from exc
        except (UnicodeDecodeError, ValueError) as exc:
            raise EvidenceError(path, f"expected a platform manifest in JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise EvidenceError(path, "expected an object (a mapping) at the top")
    platforms = _platforms(doc, path)
    if len(platforms) > 1:  # each platform reads its own fields and ignores the others': all of them would count
        raise EvidenceError(path, f"reads as a {' and a '.join(platforms)} manifest at once; expected one platform's")
    if platforms == ["slack"]:
        oauth = mapping(doc.get("oauth_config"), f"{path}: oauth_config")
        scopes = mapping(oauth.get("scopes"), f"{path}: oauth_config.scopes")
        perms = []
        for token, listed in scopes.items():
            for scope in strings(listed, f"{path}: oauth_config.scopes.{token}"):
                perms += slack_scope(token, scope)
        return PlatformManifest("slack", path, tuple(perms), slack_egress(doc, path))
    yaml = path.lower().endswith((".yml", ".yaml"))
    if not yaml:  # Mattermost's JSON, read as Go reads it
        doc = go_fields(doc, path)
    if platforms == ["mattermost-app"]:
        perms = [(f"mattermost app permission {p}", MATTERMOST_APP_PERMISSIONS.get(p))
                 for p in strings(doc.get("requested_permissions"), f"{path}: requested_permissions")]  # fmt: skip
        # a location names a top-level one and optionally what is below it: /command/poll is the /poll command
        perms += [(f"mattermost app location {loc}", MATTERMOST_APP_LOCATIONS.get("/" + loc[1:].split("/")[0])
                   if loc.startswith("/") else None)
                  for loc in strings(doc.get("requested_locations"), f"{path}: requested_locations")]  # fmt: skip
        http = mapping(doc.get("http"), f"{path}: http")
        root_url = (http if yaml else go_fields(http, path, "http.")).get("root_url")
        # A v0.7 manifest names its root URL at the top (with app_type: http); Mattermost Apps still
        # reads that format, and prefers it, whenever the file has no SchemaVersion.
        urls = [("http.root_url", root_url), ("root_url", doc.get("root_url"))]
        egress = tuple(dict.fromkeys(url_host(url, path, where) for where, url in urls if url is not None))
        return PlatformManifest("mattermost-app", path, tuple(perms), egress)
    if platforms == ["mattermost-plugin"]:
        perms = [
            (f"mattermost plugin {part}", MATTERMOST_PLUGIN_PARTS[part])
            for part in ("server", "webapp")
            if doc.get(part)
        ]
        return PlatformManifest("mattermost-plugin", path, tuple(perms), min_server_version=doc.get("min_server_version"),
                                files=_mattermost_files(doc, path, yaml))  # fmt: skip
    if platforms == ["grafana-plugin"]:
        return PlatformManifest("grafana-plugin", path, _grafana_permissions(doc, path))
    raise EvidenceError(path, "expected a Slack app manifest (oauth_config or display_information), a Mattermost App "
                        "(app_id) or plugin (id + server/webapp), a Grafana plugin.json (id + type) or "
                        "MANIFEST.txt")  # fmt: skip


def _grafana_permissions(doc: dict, path: str) -> tuple[tuple[str, str | None], ...]:
    """What a Grafana plugin.json asks for (Grafana decodes it as Go does, like Mattermost): its
    backend process, and an app plugin's service-account grants (``iam.permissions``), which have no
    capability of ours and are refused as unknown."""
    backend = doc.get("backend")
    if backend is not None and not isinstance(backend, bool):
        raise EvidenceError(f"{path}: backend", f"expected true or false, got {backend!r}")
    perms = [("grafana plugin backend", GRAFANA_PLUGIN_PARTS['"backend": true'])] if backend else []
    iam = go_fields(mapping(doc.get("iam"), f"{path}: iam"), path, "iam.")
    for i, grant in enumerate(sequence(iam.get("permissions"), f"{path}: iam.permissions")):
        action = go_fields(mapping(grant, f"{path}: iam.permissions[{i}]"), path, f"iam.permissions[{i}].").get(
            "action"
        )
        perms.append((f"grafana plugin iam permission {action}", None))
    return tuple(perms)


def _mattermost_files(doc: dict, path: str, yaml: bool) -> tuple[tuple[str, str], ...]:
    """The files a Mattermost plugin manifest names: its server executables (one per platform, or the
    single ``executable``) and its web app bundle. Go decodes the executables into a map, whose keys
    it keeps as written."""
    server = mapping(doc.get("server"), f"{path}: server")
    webapp = mapping(doc.get("webapp"), f"{path}: webapp")
    if not yaml:
        server, webapp = go_fields(server, path, "server."), go_fields(webapp, path, "webapp.")
    named = [(f"server.executables.{arch}", file)
             for arch, file in mapping(server.get("executables"), f"{path}: server.executables").items()]  # fmt: skip
    named += [("server.executable", server.get("executable")), ("webapp.bundle_path", webapp.get("bundle_path"))]
    for where, file in named:
        if file is not None and not isinstance(file, str):
            raise EvidenceError(f"{path}: {where}", f"expected a path in the plugin, got {file!r}")
    return tuple((where, file) for where, file in named if file)


def _mattermost_files_present(platform: PlatformManifest, contents: dict[str, bytes]) -> None:
    """Mattermost starts a plugin's server executable and serves its web app bundle from the plugin's
    folder, the folder of its manifest: a file the manifest names and the bundle lacks is a plugin that
    fails to start."""
    folder = platform.path.rsplit("/", 1)[0] + "/" if "/" in platform.path else ""
    for where, file in platform.files:
        name = normal_path(file)
        if path_refusal(name) is not None or path_refusal(folder + name) is not None:
            raise EvidenceError(f"{platform.path}: {where}", f"{file!r} leaves the plugin's folder "
                                f"({folder or 'the top of the bundle'}); expected a path inside it")  # fmt: skip
        if folder + name not in contents:
            raise EvidenceError(f"{platform.path}: {where}", f"{folder + name!r} is not a file of the bundle (Mattermost "
                                f"reads {file!r} in the plugin's folder, {folder or 'the top of the bundle'}, and "
                                "fails to start the plugin without it)")  # fmt: skip


def slack_scope(token: str, scope: str) -> list[tuple[str, str | None]]:
    """What a scope of the ``oauth_config.scopes`` list ``token`` requests. An optional scope is
    requested all the same (the installer grants it with one click); a user token acts as the user
    who installed the app; a list Slack may add later is kept, its scopes unknown."""
    what = f"slack {token} scope {scope}"
    # every admin.* scope is admin:settings (Slack grants them to user tokens only)
    ours = SLACK_SCOPES.get("admin" if scope == "admin" or scope.startswith("admin.") else scope)
    if token in ("bot", "bot_optional"):
        return [(what, ours)]
    if token in ("user", "user_optional"):
        return [(what, ours), (what, "act_as_user")]
    return [(what, None)]


# What urlsplit and a browser-style (WHATWG) URL parser read as the same host: ASCII names and IP
# addresses. A backslash, a percent escape or a non-ASCII letter is read differently by the two.
_HOST = re.compile(r"[a-z0-9_.-]+|[0-9a-f:.]+")


def url_host(url, path: str, where: str) -> str:
    """The host ``url`` names; a URL without one would hide where the platform sends data, so it
    makes the manifest unusable rather than adding no egress. So does a URL whose host other
    parsers read differently: ``https://evil.example\\@api.github.com/`` is api.github.com to
    urlsplit and evil.example to a browser-style parser (a backslash ends the host there)."""
    try:
        host = urlsplit(url).hostname if isinstance(url, str) and "\\" not in url else None
    except ValueError:  # an unclosed [IPv6] bracket, a bad port
        host = None
    if not host or not _HOST.fullmatch(host):
        raise EvidenceError(
            f"{path}: {where}", f"expected a URL with a host (ASCII letters, digits, '-', '.'), got {url!r}"
        )
    return host


def slack_egress(doc: dict, path: str) -> tuple[str, ...]:
    """The hosts a Slack app manifest sends workspace data to: Slack POSTs events, interactions,
    menu queries and slash commands to their request URLs, OAuth codes go to the redirect URLs,
    the app fetches the pages of its unfurl domains, and a workflow app's functions call its
    ``outgoing_domains``.

    Socket Mode apps receive events over a WebSocket they open to Slack, which is the platform, not
    egress. Request URLs such an app still lists are counted all the same: Slack uses them as soon
    as Socket Mode is switched off in the app's settings, without a new (signed) manifest, so the
    bundle must be allowed to reach them already."""

    settings = mapping(doc.get("settings"), f"{path}: settings")
    features = mapping(doc.get("features"), f"{path}: features")
    oauth = mapping(doc.get("oauth_config"), f"{path}: oauth_config")
    events = mapping(settings.get("event_subscriptions"), f"{path}: settings.event_subscriptions")
    interactivity = mapping(settings.get("interactivity"), f"{path}: settings.interactivity")
    urls = [
        ("settings.event_subscriptions.request_url", events.get("request_url")),
        ("settings.interactivity.request_url", interactivity.get("request_url")),
        ("settings.interactivity.message_menu_options_url", interactivity.get("message_menu_options_url")),
    ]
    for i, command in enumerate(sequence(features.get("slash_commands"), f"{path}: features.slash_commands")):
        urls.append(
            (f"features.slash_commands[{i}].url", mapping(command, f"{path}: features.slash_commands[{i}]").get("url"))
        )
    redirects = sequence(oauth.get("redirect_urls"), f"{path}: oauth_config.redirect_urls")
    urls += [(f"oauth_config.redirect_urls[{i}]", url) for i, url in enumerate(redirects)]
    hosts = [url_host(url, path, where) for where, url in urls if url is not None]
    domains = [
        ("features.unfurl_domains", features.get("unfurl_domains")),
        ("outgoing_domains", doc.get("outgoing_domains")),
    ]
    for where, listed in domains:
        for i, domain in enumerate(sequence(listed, f"{path}: {where}")):
            if not isinstance(domain, str) or not _HOST.fullmatch(domain.lower()):
                raise EvidenceError(f"{path}: {where}[{i}]", f"expected a host name, got {domain!r}")
            hosts.append(domain.lower())
    return tuple(dict.fromkeys(hosts))


def _clear_signed(data: bytes) -> bool:
    """Whether ``data`` is a PGP clear-signed message, as Grafana's ``MANIFEST.txt`` is."""
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")


def grafana_files(data: bytes, path: str) -> dict[str, str]:
    """The file hashes of a Grafana ``MANIFEST.txt`` (PGP clear-signed JSON), paths in our spelling,
    relative to the folder of ``MANIFEST.txt`` (Grafana joins them to the plugin's folder, so a path
    leaving it, or an absolute one, makes the list unusable)."""
    text = data.decode("utf-8-sig", errors="replace").replace("\r\n", "\n")
    match = re.search(
        r"-----BEGIN PGP SIGNED MESSAGE-----\n(?:[^\n]+\n)*\n(.*?)\n-----BEGIN PGP SIGNATURE-----", text, re.S
    )
    if not match:
        raise EvidenceError(path, "expected a PGP clear-signed Grafana MANIFEST")
    try:
        doc = json_document(match.group(1))
    except EvidenceError as exc:
        raise EvidenceError(path, exc.reason) from exc
    except ValueError as exc:
        raise EvidenceError(path, f"the signed body is not JSON: {exc}") from exc
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict):
        raise EvidenceError(f"{path}: files", "expected a mapping of path to sha256")
    out = {}
    for name, digest in files.items():
        listed = normal_path(name)
        if path_refusal(listed) is not None:
            raise EvidenceError(f"{path}: files", f"{name!r} leaves the plugin's folder; expected a path inside it")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9A-Fa-f]{64}", digest):
            raise EvidenceError(f"{path}: files.{name}", f"expected a SHA-256 in hex, got {digest!r}")
        if listed in out:
            raise EvidenceError(f"{path}: files.{name}", f"{listed!r} is listed twice")
        out[listed] = digest.lower()
    return out
