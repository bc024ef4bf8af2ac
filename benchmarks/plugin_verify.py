"""How long verifying a plugin bundle takes, and what refusing a tar or gzip bomb costs.

Prints, best of N: read + verify of signed bundles (200 files of 16 KiB; 2,000 files of 16 KiB,
the file-count limit), the refusal of a gzip bomb (1 GiB of zeros in about 1 MB) and of a header
claiming a 1 TiB file, each with the process's peak RSS afterwards.

    python benchmarks/plugin_verify.py [--runs 3]
"""

import argparse
import hashlib
import json
import resource
import tarfile
import time
import zlib
from datetime import UTC, datetime

from phase8_assets.domains.plugins import verify
from phase8_assets.evidence.plugins import (
    MANIFEST,
    SIGNATURE,
    TrustedKey,
    TrustLevel,
    TrustPolicy,
    generate_key,
    key_id,
    manifest_for,
    public_pem,
    read_bundle_bytes,
    sign_manifest,
    write_bundle,
)

KEY = generate_key(hashlib.sha256(b"benchmark").digest())
AT = datetime(2026, 11, 20, tzinfo=UTC)


def policy() -> TrustPolicy:
    kid = key_id(KEY.public_key())
    key = TrustedKey(kid, "bench", public_pem(KEY.public_key()), "core", datetime(2026, 1, 1, tzinfo=UTC),
                     datetime(2027, 1, 1, tzinfo=UTC), None)  # fmt: skip
    levels = {
        level: TrustLevel(frozenset({"post:messages"}), ()) for level in ("core", "verified", "community", "private")
    }
    return TrustPolicy({kid: key}, levels, {"t": ("com.bench.plugin",)}, {})


def bundle(files: int, size: int) -> bytes:
    manifest = {"apiVersion": "phase8/v1", "kind": "PluginManifest", "id": "com.bench.plugin", "version": "1.0.0",
                "publisher": "bench", "min_server_version": "10.0.0", "entry_points": {"webapp": "f/0"},
                "capabilities": ["post:messages"]}  # fmt: skip
    content = {"plugin.json": json.dumps(manifest).encode()}
    content.update({f"f/{i}": hashlib.sha256(str(i).encode()).digest() * (size // 32) for i in range(files - 3)})
    signed_manifest = manifest_for(content)
    content.update({MANIFEST: signed_manifest, SIGNATURE: sign_manifest(KEY, signed_manifest)})
    return write_bundle(content)


def gzip_bomb(gib: int = 1) -> bytes:
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    info = tarfile.TarInfo("zeros.bin")
    info.size = gib << 30
    chunk = b"\0" * (1 << 20)
    return (
        deflate.compress(info.tobuf()) + b"".join(deflate.compress(chunk) for _ in range(gib << 10)) + deflate.flush()
    )


def header_bomb() -> bytes:
    info = tarfile.TarInfo("huge.bin")
    info.size = 1 << 40
    return zlib.compress(info.tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024, wbits=31)


def best(runs: int, action) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    trust = policy()
    for files, size in ((200, 16384), (2000, 16384)):
        data = bundle(files, size)

        def check(data=data):
            result = verify(read_bundle_bytes(data, "bench.tar.gz"), trust, AT)
            assert result.verdict == "verified", result.problems

        seconds = best(args.runs, check)
        print(f"verify {files} files x {size // 1024} KiB ({len(data) / 1e6:.1f} MB gz): {seconds * 1000:.0f} ms, "
              f"peak RSS {rss_mb():.0f} MB")  # fmt: skip
    for name, data in (("gzip bomb, 1 GiB of zeros", gzip_bomb()), ("header claiming 1 TiB", header_bomb())):

        def refuse(data=data):
            assert read_bundle_bytes(data, "bomb.tar.gz").refusals

        seconds = best(args.runs, refuse)
        reason = read_bundle_bytes(data, "bomb.tar.gz").refusals[0].reason
        print(
            f"refuse {name} ({len(data) / 1e3:.0f} KB): {reason} in {seconds * 1000:.0f} ms, peak RSS {rss_mb():.0f} MB"
        )


if __name__ == "__main__":
    main()
