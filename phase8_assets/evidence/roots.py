"""Evidence roots: a local folder or ``s3://bucket/prefix``, read through one interface.

Paths are always relative to a root and confined to it: no absolute paths, no ``..``, and a
symlink that leads outside the folder is refused. S3 is read with boto3 (``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` select a non-AWS endpoint, e.g. a local S3 server).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from phase8_assets.evidence import check_abandoned
from phase8_assets.shared.redaction import redact_text

CHUNK_BYTES = 1 << 20  # what streaming reads hold at a time


class RootError(ValueError):
    """An evidence root or a path inside it that cannot be used."""


@dataclass(frozen=True)
class FileRef:
    """One file found under a root: ``rel`` is relative to the root, ``uri`` is absolute."""

    rel: str
    uri: str
    size: int
    version: str = ""  # changes when the content may have: mtime (local) or ETag (S3)


@cache
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob (``*`` within a folder, ``**/`` across folders, ``?``, ``[...]``) to a regex."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def check_relative(path: str, what: str) -> str:
    """A normalised relative path, or an error if it is absolute or climbs out with ``..``."""
    if not path or path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or "://" in path:
        raise RootError(f"{what}: {path!r} must be a path relative to the evidence root")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RootError(f"{what}: {path!r} leaves the evidence root ('..' is not allowed)")
    return "/".join(parts)


def _static_prefix(pattern: str) -> str:
    """The folder part of a glob before its first wildcard: where listing can start."""
    parts = pattern.split("/")
    fixed = []
    for part in parts[:-1]:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return "/".join(fixed)


def _may_hold(folder: str, pattern: str) -> bool:
    """Whether the folder ``folder`` (relative to the root; '' for the root) could hold a file
    ``pattern`` matches: each of its parts matches the pattern's part at that depth, up to a ``**``."""
    parts = [p for p in folder.split("/") if p]
    globs = pattern.split("/")
    for depth, part in enumerate(parts):
        if depth >= len(globs) - 1:
            return "**" in globs[-1]
        if "**" in globs[depth]:
            return True
        if not glob_regex(globs[depth]).match(part):
            return False
    return True


class EvidenceRoot:
    """Base class; ``uri`` identifies the root (an absolute path or ``s3://bucket/prefix``)."""

    uri: str

    def glob(self, pattern: str) -> list[FileRef]:
        raise NotImplementedError

    def listing(self, pattern: str) -> tuple[list[FileRef], list[tuple[str, str]]]:
        """``glob``, and the folders that could hold a match but cannot be listed (and the matching
        files that cannot be named): (uri, reason) each, so an unreadable folder is named rather
        than read as "no files"."""
        return self.glob(pattern), []

    def read_bytes(self, rel: str, max_bytes: int) -> bytes:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        """Whether a file is at ``rel`` (a path confined to the root)."""
        raise NotImplementedError

    def stage(self, rel: str, max_bytes: int, folder: Path) -> tuple[Path, str, int]:
        """A local path to the file's content, its sha256 and its size, hashed while streamed in
        ``CHUNK_BYTES`` pieces (a remote object is copied into ``folder`` on the way): memory does
        not grow with the file."""
        raise NotImplementedError

    def uri_of(self, rel: str) -> str:
        return f"{self.uri.rstrip('/')}/{rel}" if rel else self.uri

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


class LocalRoot(EvidenceRoot):
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        self.uri = str(self.path)

    def _resolve(self, rel: str) -> Path:
        rel = check_relative(rel, "path")
        full = (self.path / rel).resolve()
        if full != self.path and self.path not in full.parents:
            raise RootError(f"{self.path / rel}: leads outside the evidence root {self.path} (symlink?)")
        if (self.path / rel).is_symlink() and not full.exists():
            raise RootError(f"{self.path / rel}: a broken symlink: its target {full} does not exist")
        return full

    def glob(self, pattern: str) -> list[FileRef]:
        return self.listing(pattern)[0]

    def listing(self, pattern: str) -> tuple[list[FileRef], list[tuple[str, str]]]:
        pattern = check_relative(pattern, "evidence path")
        regex = glob_regex(pattern)
        start = self.path / _static_prefix(pattern)
        found: list[FileRef] = []
        unlisted: list[tuple[str, str]] = []

        def cannot_list(exc: OSError) -> None:
            folder = Path(os.fsdecode(exc.filename)) if exc.filename is not None else start
            rel = folder.relative_to(self.path).as_posix() if folder.is_relative_to(self.path) else ""
            if _may_hold(rel, pattern):
                unlisted.append((_shown(folder), f"cannot list the folder: {exc.strerror or exc}"))

        try:
            if not start.is_dir():
                return found, unlisted
        except OSError as exc:  # a parent folder this user may not enter
            cannot_list(exc)
            return found, unlisted
        for dirpath, dirnames, filenames in os.walk(start, onerror=cannot_list, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                rel = full.relative_to(self.path).as_posix()
                # A symlink whose target is gone is found (and refused when read, by name): the file
                # it stood for is missing evidence, never silently not there.
                if regex.match(rel) and (full.is_file() or full.is_symlink() and not full.exists()):
                    if not _utf8(rel):  # its name could be neither stored nor reported: named, not read
                        unlisted.append((_shown(full), "the file name is not UTF-8 (unzipped from an archive "
                                         "that wrote names in another encoding?); expected a UTF-8 name: rename it"))  # fmt: skip
                        continue
                    stat = full.stat() if full.exists() else full.lstat()
                    found.append(FileRef(rel, str(full), stat.st_size, f"{stat.st_mtime_ns}:{stat.st_size}"))
        return found, unlisted

    def read_bytes(self, rel: str, max_bytes: int) -> bytes:
        full = self._resolve(rel)
        size = full.stat().st_size
        if size > max_bytes:
            raise RootError(f"{full}: {size} bytes exceeds the limit of {max_bytes} bytes")
        with open(full, "rb") as fh:
            return fh.read(max_bytes + 1)

    def exists(self, rel: str) -> bool:
        try:
            return self._resolve(rel).is_file()
        except RootError:
            return False

    def stage(self, rel: str, max_bytes: int, folder: Path) -> tuple[Path, str, int]:
        full = self._resolve(rel)
        with open(full, "rb") as fh:
            digest, size = _copy_hashing(fh, None, max_bytes, str(full))
        return full, digest, size

    def uri_of(self, rel: str) -> str:
        return str(self.path / rel) if rel else self.uri


def _utf8(name: str) -> bool:
    """Whether a file name read from the file system is text: bytes that are not UTF-8 come back
    from ``os`` as lone surrogates, which no report, JSON or warehouse row can hold."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(path: Path) -> str:
    """``path`` as text, bytes that are not UTF-8 written as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def s3_client():
    """A boto3 S3 client; the standard AWS_* variables (endpoint, region, keys) configure it."""
    import boto3

    return boto3.client("s3", region_name=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")


class S3Root(EvidenceRoot):
    def __init__(self, uri: str):
        match = re.match(r"^s3://([^/]+)/?(.*)$", uri)
        if not match:
            raise RootError(f"{uri}: expected s3://bucket/prefix")
        self.bucket = match.group(1)
        self.prefix = match.group(2).strip("/")
        self.uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = s3_client()
        return self._client

    def _key(self, rel: str) -> str:
        rel = check_relative(rel, "path")
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _object_key(self, rel: str) -> str:
        """The key of the object at ``rel`` as ``glob`` listed it. S3 keys are literal: ``a//b``,
        ``a/./b`` and ``a\\b`` are objects of their own, not ``a/b`` (a script joining a prefix that
        ends in "/" writes ``a//b``), so the key is read as listed, once ``check_relative`` has
        confined it (no ``..``, nothing absolute); reading its normal form would read another
        object, or report a listed object missing."""
        check_relative(rel, "path")
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def glob(self, pattern: str) -> list[FileRef]:
        pattern = check_relative(pattern, "evidence path")
        regex = glob_regex(pattern)
        static = _static_prefix(pattern)
        list_prefix = self._key(static) + "/" if static else (self.prefix + "/" if self.prefix else "")
        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=list_prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    # A key ending in "/" is a folder marker (the console's "Create folder"): a folder,
                    # as it is locally, never a file of the kind whose glob it happens to match.
                    if obj["Key"].endswith("/"):
                        continue
                    rel = obj["Key"][len(self.prefix) + 1 :] if self.prefix else obj["Key"]
                    if regex.match(rel):
                        found.append(FileRef(rel, self.uri_of(rel), int(obj["Size"]), str(obj.get("ETag", ""))))
        except Exception as exc:  # botocore raises many types; all mean "cannot list"
            raise RootError(f"{self.uri}: cannot list objects: {_s3_reason(exc)}") from exc
        return sorted(found, key=lambda f: f.rel)

    def read_bytes(self, rel: str, max_bytes: int) -> bytes:
        key = self._object_key(rel)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=key)
            size = int(obj.get("ContentLength", 0))
            if size > max_bytes:
                obj["Body"].close()
                raise RootError(f"{self.uri_of(rel)}: {size} bytes exceeds the limit of {max_bytes} bytes")
            return obj["Body"].read(max_bytes + 1)
        except RootError:
            raise
        except Exception as exc:
            raise RootError(f"{self.uri_of(rel)}: cannot read: {_s3_reason(exc)}") from exc

    def exists(self, rel: str) -> bool:
        """Whether the object is there; a missing bucket is an error, never a missing file (a HEAD
        answers both with a bare 404, so the bucket is asked about then)."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(rel))
            return True
        except Exception as exc:
            if _status(exc) != 404:
                raise RootError(f"{self.uri_of(rel)}: cannot check: {_s3_reason(exc)}") from exc
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            if _status(exc) == 404:
                raise RootError(f"{self.uri}: the bucket {self.bucket!r} does not exist") from exc
            raise RootError(f"{self.uri_of(rel)}: cannot check: {_s3_reason(exc)}") from exc
        return False

    def stage(self, rel: str, max_bytes: int, folder: Path) -> tuple[Path, str, int]:
        target = folder / posixpath.basename(rel)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._object_key(rel))["Body"]
        except Exception as exc:
            raise RootError(f"{self.uri_of(rel)}: cannot read: {_s3_reason(exc)}") from exc
        try:
            with open(target, "wb") as out:
                digest, size = _copy_hashing(body, out, max_bytes, self.uri_of(rel))
        except RootError:
            raise
        except Exception as exc:
            raise RootError(f"{self.uri_of(rel)}: cannot read: {_s3_reason(exc)}") from exc
        finally:
            body.close()
        return target, digest, size


def _copy_hashing(source, target, max_bytes: int, where: str) -> tuple[str, int]:
    """sha256 and size of ``source`` read in chunks (written on to ``target`` when given); more
    than ``max_bytes`` is refused as soon as it is seen."""
    sha, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK_BYTES):
        check_abandoned()
        size += len(chunk)
        if size > max_bytes:
            raise RootError(f"{where}: {size}+ bytes exceeds the limit of {max_bytes} bytes")
        sha.update(chunk)
        if target is not None:
            target.write(chunk)
    return sha.hexdigest(), size


def _status(exc: Exception) -> int | None:
    return (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")


def _s3_reason(exc: Exception) -> str:
    """Why an S3 call failed, redacted: botocore's connection errors quote the endpoint URL, which
    may carry credentials (``https://user:password@host``), and the reason goes into rejections,
    the warehouse and the CLI's error line."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return redact_text(f"{err.get('Code')}: {err.get('Message')}")
    return redact_text(str(exc) or type(exc).__name__)


def open_root(location: str | os.PathLike) -> EvidenceRoot:
    """A root for a folder path or an ``s3://`` URI; a missing folder is an error."""
    text = str(location)
    if text.startswith("s3://"):
        return S3Root(text)
    path = Path(text)
    if not path.is_dir():
        if path.is_file():  # most often the config itself: --evidence data/phase8.yaml
            raise RootError(
                f"{text}: is a file; an evidence root is the folder that holds phase8.yaml "
                f"(--evidence {path.parent.as_posix()}) or s3://bucket/prefix"
            )
        raise RootError(f"{text}: evidence root not found (expected a folder or s3://bucket/prefix)")
    return LocalRoot(path)


def local_copy(uri: str, folder: Path) -> str:
    """A path DuckDB can read: the file itself, or an S3 object staged into a folder of its own under
    ``folder`` (copied in chunks, whatever its bytes; two objects of one name never share a copy).
    ``RootError`` (naming the object, its reason redacted) when it cannot be read."""
    if not uri.startswith("s3://"):
        return uri
    root, rel = file_root(uri)
    path, _, _ = root.stage(rel, sys.maxsize, Path(tempfile.mkdtemp(prefix="copy-", dir=folder)))
    return str(path)


def file_root(uri: str) -> tuple[EvidenceRoot, str]:
    """A root and the path in it of the file at ``uri``: its folder and name, or for an object its
    bucket and whole key. Keys are literal, so the key is never split: the folder ``a/`` of
    ``a//x.json`` read as a root's prefix would lose its trailing "/" and name ``a/x.json``."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        return S3Root(f"s3://{bucket}"), key
    parent, _, name = uri.rpartition("/")
    return open_root(parent), name


def locate(base: EvidenceRoot, rel_file: str, name: str) -> tuple[EvidenceRoot, str]:
    """The folder and file an ``extends`` path names, confined like every other path.

    It may only climb first (leading ``..`` segments, to a parent config); what follows is checked
    by ``check_relative`` against the folder it climbed to (no absolute path, URL or further ``..``;
    a symlink out of that folder is refused), and the file must be called ``name`` — so nothing but
    another evidence config is ever opened.
    """
    parts = rel_file.replace("\\", "/").split("/")
    climb = 0
    while climb < len(parts) and parts[climb] == "..":
        climb += 1
    rest = check_relative("/".join(parts[climb:]), "the parent config")
    if posixpath.basename(rest) != name:
        raise RootError(f"{rel_file!r} must name another {name}")
    if isinstance(base, LocalRoot):
        folder = base.path
        for _ in range(climb):
            folder = folder.parent
        full = LocalRoot(folder)._resolve(rest)
        return LocalRoot(full.parent), full.name
    assert isinstance(base, S3Root)
    prefix = base.prefix.split("/") if base.prefix else []
    if climb > len(prefix):
        raise RootError(f"{base.uri}: {rel_file!r} climbs above the bucket")
    key = "/".join([*prefix[: len(prefix) - climb], rest])
    folder, file_name = posixpath.split(key)
    sub = S3Root(f"s3://{base.bucket}/{folder}")
    sub._client = base._client
    return sub, file_name
