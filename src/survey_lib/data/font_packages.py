"""The exact pinned font files of the ``glyphs`` dataset, on any Linux, without root.

The typefaces come from Debian 12 packages (:data:`~survey_lib.data.fonts.FONT_PACKAGES`).
Another distribution, other package versions or no root to install them would silently give
another data set (other fonts, so other classes, sizes and checksum). The committed manifest
``font_packages.json`` pins, per package, its version, its ``.deb`` file in the Debian archive
(path, size, SHA-256, as in the archive's signed ``Packages`` index) and every font file the
dataset uses with its SHA-256. :func:`fetch_fonts` downloads each ``.deb`` into a user cache
(``$SURVEY_CACHE_DIR/fonts``, default ``~/.cache/survey_lib/fonts``), checks its SHA-256, and
extracts only the listed font files, each checked again, into
``<cache>/debian-bookworm/usr/share/...`` (the same relative layout as a system install, so
file order, and the rendered data set, are the same).

Extraction is done here, not by ``dpkg-deb`` (absent off Debian) nor ``tarfile.extractall``:
a ``.deb`` is an ``ar`` archive (``debian-binary``, ``control.tar.*``, ``data.tar.*``) whose
format is a fixed 60-byte header per member (``ar(5)``); the standard library has no ``ar``
reader and the PyPI ones are unmaintained, so :func:`ar_members` reads it in a few checked
lines. From ``data.tar.*`` (``tarfile``, with gzip, xz, bzip2 or, when the ``zstandard``
package is installed, zstd) only regular-file members whose normalised names are in the
manifest are read, and they are written to paths built from the manifest, never from the
archive: no path traversal, link or device member can be written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import urllib.request
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from survey_lib.data.cache import cache_root
from survey_lib.io import atomic_write_bytes

MANIFEST = Path(__file__).with_name("font_packages.json")
#: apt's configuration, where the Debian archive mirrors of this machine are named.
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
TREE = "debian-bookworm"
_AR_MAGIC = b"!<arch>\n"


class FontFetchError(RuntimeError):
    """A pinned font package could not be fetched, verified or unpacked."""


@cache
def manifest() -> dict[str, Any]:
    """The committed pins: ``{"distribution", "packages": [{package, version, filename, size,
    sha256, files: {relative path: sha256}}]}``."""
    return json.loads(MANIFEST.read_text())


def pinned_files() -> dict[str, str]:
    """Every pinned font file (path relative to ``/``) -> SHA-256."""
    return {path: digest for p in manifest()["packages"] for path, digest in p["files"].items()}


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_has_pinned_fonts(root: str | Path, *, check_hashes: bool = True) -> bool:
    """Whether ``root`` (``/`` or a cache tree) holds every pinned font file, byte for byte."""
    root = Path(root)
    for rel, digest in pinned_files().items():
        path = root / rel
        if not path.is_file() or (check_hashes and sha256_file(path) != digest):
            return False
    return True


def cache_tree() -> Path:
    """The user cache the pinned fonts are unpacked into."""
    return cache_root() / "fonts" / TREE


def ar_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """``(name, content)`` of each member of an ``ar`` archive (the ``.deb`` container)."""
    if not data.startswith(_AR_MAGIC):
        raise FontFetchError("not an ar archive (a .deb starts with '!<arch>\\n')")
    pos = len(_AR_MAGIC)
    while pos < len(data):
        header = data[pos : pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise FontFetchError(f"corrupt ar member header at byte {pos}")
        name = header[:16].decode("ascii").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as exc:
            raise FontFetchError(f"corrupt ar member size at byte {pos}") from exc
        start = pos + 60
        if start + size > len(data):
            raise FontFetchError(f"ar member {name!r} is truncated")
        yield name, data[start : start + size]
        pos = start + size + (size % 2)  # members are 2-byte aligned


def _open_tar(name: str, blob: bytes) -> tarfile.TarFile:
    if name.endswith(".zst"):
        try:
            import zstandard
        except ImportError as exc:
            raise FontFetchError(
                f"{name} is zstd-compressed; `pip install zstandard` to unpack it"
            ) from exc
        blob = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read()
        return tarfile.open(fileobj=io.BytesIO(blob), mode="r:")
    if not name.endswith((".tar", ".tar.gz", ".tar.xz", ".tar.bz2")):
        raise FontFetchError(f"unknown data member {name!r} in the .deb")
    return tarfile.open(fileobj=io.BytesIO(blob), mode="r:*")


def extract_deb(deb: bytes, wanted: dict[str, str], dest: str | Path) -> list[Path]:
    """Write the members of ``deb``'s data archive listed in ``wanted`` (relative path ->
    SHA-256) under ``dest``, each verified; raise :class:`FontFetchError` for a missing or
    differing file. Nothing else in the archive is written."""
    dest = Path(dest)
    data = [(n, b) for n, b in ar_members(deb) if n.startswith("data.tar")]
    if len(data) != 1:
        raise FontFetchError(f"a .deb holds one data.tar.* member, found {len(data)}")
    found: dict[str, bytes] = {}
    with _open_tar(*data[0]) as tar:
        for member in tar:
            rel = str(PurePosixPath(member.name.removeprefix("./")))
            if rel in wanted and member.isreg():
                handle = tar.extractfile(member)
                assert handle is not None
                found[rel] = handle.read()
    written = []
    for rel, digest in sorted(wanted.items()):
        if rel not in found:
            raise FontFetchError(f"{rel} is not a regular file in the package")
        if hashlib.sha256(found[rel]).hexdigest() != digest:
            raise FontFetchError(f"{rel} in the package has SHA-256 other than the pinned one")
        path = dest.joinpath(*PurePosixPath(rel).parts)
        atomic_write_bytes(path, found[rel])
        written.append(path)
    return written


def apt_mirrors(sources: tuple[Path, ...] | None = None) -> tuple[str, ...]:
    """The archive URLs of apt's sources (one-line ``deb URL suite ...`` entries and deb822
    ``URIs:`` fields) on this machine, in order, without duplicates; empty where apt is absent."""
    files: list[Path] = []
    for src in APT_SOURCES if sources is None else sources:
        if src.is_dir():
            files += sorted(p for p in src.iterdir() if p.suffix in (".list", ".sources"))
        elif src.is_file():
            files.append(src)
    urls: list[str] = []
    for path in files:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if words[:1] == ["deb"]:
                urls += [w for w in words[1:] if "://" in w][:1]
            elif words[:1] == ["URIs:"]:
                urls += [w for w in words[1:] if "://" in w]
    return tuple(dict.fromkeys(u.rstrip("/") for u in urls))


def mirrors() -> tuple[str, ...]:
    """Where the ``.deb`` files are fetched from, tried in order: ``$SURVEY_DEBIAN_MIRRORS``
    (space-separated archive URLs, e.g. a Debian mirror and a snapshot archive of a date when
    these exact versions were current), else the Debian mirrors apt is configured with here.
    Only a Debian archive holds these packages (an Ubuntu archive does not): on other systems
    set the variable."""
    env = os.environ.get("SURVEY_DEBIAN_MIRRORS")
    found = tuple(env.split()) if env else apt_mirrors()
    if not found:
        raise FontFetchError(
            "no Debian archive to fetch the pinned typefaces from: set SURVEY_DEBIAN_MIRRORS to "
            "one or more Debian archive URLs (space-separated; the archive's root, the folder "
            "that holds pool/), or install the font packages of scripts/system-packages.txt"
        )
    return found


def download(filename: str, size: int, sha256: str, *, timeout: float = 60.0) -> bytes:
    """The ``.deb`` ``filename`` (archive path) from the first mirror that serves it with the
    pinned size and SHA-256."""
    errors = []
    for base in mirrors():
        url = f"{base.rstrip('/')}/{filename}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
                blob = response.read()
        except Exception as exc:  # network errors of any kind: try the next mirror
            errors.append(f"{url}: {exc}")
            continue
        if len(blob) != size or hashlib.sha256(blob).hexdigest() != sha256:
            errors.append(f"{url}: {len(blob)} bytes with another SHA-256 than the pinned one")
            continue
        return blob
    raise FontFetchError(f"could not fetch {filename}: " + "; ".join(errors))


def fetch_fonts(dest: str | Path | None = None, *, fetch=download) -> Path:
    """Make ``dest`` (default :func:`cache_tree`) hold every pinned font file: fetch, verify
    and unpack each package whose files are missing there or differ. Returns ``dest``."""
    dest = Path(dest) if dest is not None else cache_tree()
    for pkg in manifest()["packages"]:
        files = pkg["files"]
        if all((dest / rel).is_file() and sha256_file(dest / rel) == d for rel, d in files.items()):
            continue
        deb = fetch(pkg["filename"], int(pkg["size"]), pkg["sha256"])
        extract_deb(deb, files, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    """``python -m survey_lib.data.font_packages fetch|check``."""
    import argparse

    parser = argparse.ArgumentParser(description="the pinned glyph typefaces in a user cache")
    parser.add_argument("command", choices=("fetch", "check"))
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(f"pinned fonts in {fetch_fonts()}")
        return 0
    ok = {"system": tree_has_pinned_fonts("/"), "cache": tree_has_pinned_fonts(cache_tree())}
    print(json.dumps(ok))
    return 0 if any(ok.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
