"""The pinned font packages: fetched by URL, verified by SHA-256, unpacked safely (issue 12
item 5). Tests build small ``.deb`` files in the real format (``ar`` holding
``debian-binary``, ``control.tar.xz``, ``data.tar.xz``) and serve them from ``file://``
mirrors: the real download code runs, with no network."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from survey_lib.data import font_packages as fp
from survey_lib.data import fonts, glyphs

ROOT = Path(__file__).resolve().parents[2]
FONT = b"\x00\x01\x00\x00 pretend font bytes"
REL = "usr/share/fonts/truetype/test/Test-Regular.ttf"


def _tar(members: list[tuple[str, bytes | None, str | None]], compression: str = "xz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compression}") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(data or b"")
                tar.addfile(info, io.BytesIO(data or b""))
    return buf.getvalue()


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def make_deb(members, compression: str = "xz") -> bytes:
    suffix = {"xz": ".xz", "gz": ".gz", "bz2": ".bz2"}[compression]
    return _ar([
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", _tar([("./control", b"Package: test\n", None)])),
        (f"data.tar{suffix}", _tar(members, compression)),
    ])  # fmt: skip


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def archive(tmp_path, monkeypatch):
    """A one-package manifest and a file:// mirror holding its .deb (plus an empty mirror)."""
    deb = make_deb([
        ("./usr/", None, None),
        (f"./{REL}", FONT, None),
        ("./usr/share/doc/test/copyright", b"licence", None),
        ("../../escape.ttf", b"evil", None),
        ("/etc/evil.ttf", b"evil", None),
    ])  # fmt: skip
    mirror = tmp_path / "mirror"
    pool = mirror / "pool/main/t/test"
    pool.mkdir(parents=True)
    (pool / "test_1_all.deb").write_bytes(deb)
    pin = {"package": "fonts-test", "version": "1", "filename": "pool/main/t/test/test_1_all.deb",
           "size": len(deb), "sha256": _sha(deb), "files": {REL: _sha(FONT)}}  # fmt: skip
    monkeypatch.setattr(fp, "manifest", lambda: {"distribution": "test", "packages": [pin]})
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SURVEY_DEBIAN_MIRRORS", f"file://{empty} file://{mirror}")
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    return deb, pin


def test_fetch_downloads_verifies_and_unpacks_only_the_pinned_files(archive, tmp_path) -> None:
    tree = fp.fetch_fonts()
    assert tree == tmp_path / "cache" / "fonts" / fp.TREE
    written = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    assert written == [REL] and (tree / REL).read_bytes() == FONT
    assert not (tmp_path / "escape.ttf").exists()
    assert fp.tree_has_pinned_fonts(tree)
    calls = []
    fp.fetch_fonts(fetch=lambda *a: calls.append(a))  # present and verified: nothing fetched
    assert calls == []


def test_download_rejects_a_deb_with_another_hash(archive, tmp_path, monkeypatch) -> None:
    deb, pin = archive
    with pytest.raises(fp.FontFetchError, match="another SHA-256"):
        fp.download(pin["filename"], pin["size"], "0" * 64)
    monkeypatch.setenv("SURVEY_DEBIAN_MIRRORS", f"file://{tmp_path}/nowhere")
    with pytest.raises(fp.FontFetchError, match="could not fetch"):
        fp.download(pin["filename"], pin["size"], pin["sha256"])


@pytest.mark.parametrize("compression", ["xz", "gz", "bz2"])
def test_extract_checks_every_file(tmp_path, compression: str) -> None:
    deb = make_deb([(f"./{REL}", FONT, None)], compression)
    assert fp.extract_deb(deb, {REL: _sha(FONT)}, tmp_path) == [tmp_path / REL]
    with pytest.raises(fp.FontFetchError, match="SHA-256 other than the pinned"):
        fp.extract_deb(deb, {REL: "0" * 64}, tmp_path / "b")
    with pytest.raises(fp.FontFetchError, match="not a regular file"):
        fp.extract_deb(deb, {"usr/share/fonts/missing.ttf": _sha(FONT)}, tmp_path / "c")


def test_links_are_never_followed_or_written(tmp_path) -> None:
    deb = make_deb([(f"./{REL}", None, "/etc/passwd")])
    with pytest.raises(fp.FontFetchError, match="not a regular file"):
        fp.extract_deb(deb, {REL: _sha(FONT)}, tmp_path)
    assert not any(tmp_path.rglob("*.ttf"))


def test_bad_ar_archives(tmp_path) -> None:
    deb = make_deb([(f"./{REL}", FONT, None)])
    with pytest.raises(fp.FontFetchError, match="not an ar archive"):
        list(fp.ar_members(b"PK" + deb))
    with pytest.raises(fp.FontFetchError, match="truncated"):
        list(fp.ar_members(deb[:-200]))
    with pytest.raises(fp.FontFetchError, match="one data.tar"):
        fp.extract_deb(_ar([("debian-binary", b"2.0\n")]), {}, tmp_path)


def test_a_real_debian_package_when_apt_has_it(tmp_path) -> None:
    """The committed pins are the archive's: a cached .deb of the system (if any) matches."""
    pin = next(p for p in fp.manifest()["packages"] if p["package"] == "fonts-cantarell")
    cached = Path("/var/cache/apt/archives") / Path(pin["filename"]).name
    if not cached.is_file():
        pytest.skip("no cached fonts-cantarell .deb on this machine")
    deb = cached.read_bytes()
    assert _sha(deb) == pin["sha256"]
    assert len(fp.extract_deb(deb, pin["files"], tmp_path)) == len(pin["files"])


def test_manifest_covers_every_pinned_package() -> None:
    pins = fp.manifest()["packages"]
    names = {p["package"] for p in pins}
    assert names == (set(fonts.FONT_PACKAGES) - {"fonts-roboto"}) | {"fonts-roboto-unhinted"}
    files = fp.pinned_files()
    assert len(files) == sum(len(p["files"]) for p in pins) == 241
    assert len({Path(f).name for f in files}) == len(files)  # names identify files
    assert all(p["filename"].startswith("pool/main/") and len(p["sha256"]) == 64 for p in pins)


def test_default_dirs_fall_back_to_the_fetched_cache(archive, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SURVEY_FONT_DIRS", raising=False)
    monkeypatch.setattr(fonts, "system_has_pinned_fonts", lambda: False)
    monkeypatch.setattr(fonts, "_VERIFIED_TREES", set())
    dirs = fonts.resolve_font_dirs()
    tree = tmp_path / "cache" / "fonts" / fp.TREE
    assert dirs == tuple(tree / d.lstrip("/") for d in fonts.FONT_DIRS)
    assert (tree / REL).read_bytes() == FONT  # fetched on first use
    monkeypatch.setattr(fonts, "system_has_pinned_fonts", lambda: True)
    assert fonts.resolve_font_dirs() == tuple(Path(d) for d in fonts.FONT_DIRS)


def test_committed_checksum_is_the_data_cards() -> None:
    import yaml

    card = yaml.safe_load((ROOT / "data_cards" / "glyphs.yaml").read_text())
    assert card["checksums"]["font-list"] == glyphs.PINNED_FONT_LIST_CHECKSUM


@pytest.mark.skipif(
    not Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").is_file(), reason="needs DejaVu"
)
def test_other_glyph_set_is_refused_unless_asked(tmp_path, monkeypatch) -> None:
    some = tmp_path / "fonts"
    some.mkdir()
    for path in sorted(Path("/usr/share/fonts/truetype/dejavu").glob("*.ttf")):
        (some / path.name).symlink_to(path)
    monkeypatch.setenv("SURVEY_FONT_DIRS", str(some))
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(glyphs.ALLOW_ENV, raising=False)
    glyphs._MEMO.clear()
    try:
        with pytest.raises(glyphs.GlyphSetMismatchError, match="not the committed f01940bc"):
            glyphs.load_glyphs("train")
        assert len(glyphs.load_glyphs("train", allow_other_fonts=True)) > 0
        monkeypatch.setenv(glyphs.ALLOW_ENV, "1")
        assert len(glyphs.load_glyphs("train")) > 0
        assert len(glyphs.load_glyphs("train", font_dirs=str(some))) > 0  # explicit: unchecked
    finally:
        glyphs._MEMO.clear()
        os.environ.pop(glyphs.ALLOW_ENV, None)


def test_mirrors_come_from_the_environment_or_apt(tmp_path, monkeypatch) -> None:
    from survey_lib.data import font_packages as fp

    one = tmp_path / "sources.list"
    one.write_text("# a comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n")
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian/ http://other.example/debian\n"
    )
    (d / "ignored.txt").write_text("deb http://never.example/debian bookworm main\n")
    assert fp.apt_mirrors((one, d)) == ("http://mirror.example/debian", "http://other.example/debian")
    monkeypatch.setattr(fp, "APT_SOURCES", (tmp_path / "none",))
    monkeypatch.delenv("SURVEY_DEBIAN_MIRRORS", raising=False)
    with pytest.raises(fp.FontFetchError, match="SURVEY_DEBIAN_MIRRORS"):
        fp.mirrors()
    monkeypatch.setenv("SURVEY_DEBIAN_MIRRORS", "file:///a file:///b")
    assert fp.mirrors() == ("file:///a", "file:///b")
