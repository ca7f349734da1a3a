"""``glyphs``: characters rendered from real typefaces, a many-class offline source dataset.

Every font of a pinned family (:mod:`survey_lib.data.fonts`) draws every character of a script
whose characters its character map all covers; the glyph's ink is cropped, scaled (aspect ratio
kept) so its longer side is :data:`BOX_FRACTION` of the image (24 px of 32) and centred by its
bounding box, in the manner of MNIST's size normalisation (LeCun et al., "Gradient-based learning
applied to document recognition", Proc. IEEE 1998, https://doi.org/10.1109/5.726791).

Classes. Size normalisation erases the difference between a lower-case letter and a capital of
the same form, so Latin follows EMNIST *Balanced* (Cohen et al., "EMNIST: an extension of MNIST
to handwritten letters", IJCNN 2017, https://arxiv.org/abs/1702.05373): 10 digits, 26 capitals
(C I J K L M O P S U V W X Y Z also hold their lower-case forms) and the 11 lower-case letters
a b d e f g h n q r t, 47 classes. Greek and Cyrillic keep only letters whose usual form is not
that of a Latin letter or digit (nor, for Cyrillic, of a Greek capital), so they are new classes
to a Latin source: Greek 10 capitals + 20 lower-case letters (30), Cyrillic 17 capitals.

Splits are by design (``train``/``test`` fonts never share a typeface or a clone of one).
With the default font folders (the system's or the pinned packages' files in a user cache, see
:mod:`survey_lib.data.fonts`) a glyph set other than the committed one is refused
(:func:`check_glyph_set`) unless ``allow_other_fonts=True`` or ``$SURVEY_ALLOW_OTHER_GLYPHS=1``
says to use it: results on other fonts are not comparable with the committed ones.
Rendering is deterministic for given font files and FreeType version; the result is cached once
under ``$SURVEY_CACHE_DIR/glyphs``. A font whose renderings of a script equal another font's
exactly is dropped for that script.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image, ImageDraw, ImageFont, features

from survey_lib.data.base import ImageDataset
from survey_lib.data.cache import cache_root
from survey_lib.data.errors import DatasetNotFoundError
from survey_lib.data.fonts import (
    FONT_PACKAGES,
    FontFile,
    font_files,
    pinned_fonts,
    resolve_font_dirs,
)
from survey_lib.data.registry import register_dataset
from survey_lib.io import atomic_torch_save

GLYPHS_VERSION = 1
"""Bump when the rendering or the class lists change (invalidates cached renders)."""

SCRIPT_CLASSES: dict[str, tuple[str, ...]] = {
    "latin": tuple("0123456789")
    + tuple(c + c.lower() if c in "CIJKLMOPSUVWXYZ" else c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    + tuple("abdefghnqrt"),
    "greek": tuple("ΓΔΘΛΞΠΣΦΨΩ") + tuple("αβγδεζηθλμξπρστυφχψω"),
    "cyrillic": tuple("БДЖИЙЛУЦЧШЩЪЫЬЭЮЯ"),
}
"""Per script, one string per class: the characters drawn as examples of it (class name = the
first character)."""

SCRIPTS: tuple[str, ...] = tuple(SCRIPT_CLASSES)
SPLITS: tuple[str, ...] = ("train", "test")
BOX_FRACTION = 0.75
RENDER_PX = 96
"""Font size (pixels per em) glyphs are drawn at before being scaled down."""
DEFAULT_SPLIT_SIZES = {"train": 11_780, "test": 3_162}
"""Images per split with the default options (Latin, 32 px) and every package of
:data:`~survey_lib.data.fonts.FONT_PACKAGES` at its Debian 12 version (checked by a slow test)."""
MIN_FONTS = 8
"""Fewer usable fonts than this for a requested script is an error, not a tiny dataset."""
PINNED_FONT_LIST_CHECKSUM = "f01940bc66faea7b"
""":func:`font_list_checksum` of the pinned fonts at 32 px (``data_cards/glyphs.yaml``'s
``font-list``; a test keeps the two equal)."""
ALLOW_ENV = "SURVEY_ALLOW_OTHER_GLYPHS"


class GlyphSetMismatchError(DatasetNotFoundError):
    """The fonts found render another glyph set than the committed one."""


_MEMO: dict[str, dict] = {}


def _script_chars(script: str) -> str:
    return "".join(SCRIPT_CLASSES[script])


def render_glyph(font: ImageFont.FreeTypeFont, char: str, size: int = 32) -> np.ndarray | None:
    """Draw ``char`` with ``font``, scaled and centred in a ``size``×``size`` ``uint8`` array.

    Returns ``None`` when the glyph has no ink (an empty or missing glyph).
    """
    left, top, right, bottom = font.getbbox(char)
    pad = RENDER_PX // 4
    canvas = Image.new("L", (max(right - left, 1) + 2 * pad, max(bottom - top, 1) + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), char, font=font, fill=255)
    ink = canvas.getbbox()
    if ink is None:
        return None
    glyph = canvas.crop(ink)
    box = round(BOX_FRACTION * size)
    scale = box / max(glyph.size)
    width, height = (max(1, round(side * scale)) for side in glyph.size)
    glyph = glyph.resize((width, height), Image.Resampling.LANCZOS)
    out = Image.new("L", (size, size), 0)
    out.paste(glyph, ((size - width) // 2, (size - height) // 2))
    return np.asarray(out, dtype=np.uint8)


def render_font(font: FontFile, script: str, size: int = 32) -> np.ndarray | None:
    """All characters of ``script`` in ``font`` as ``(n_chars, size, size)`` ``uint8``, or
    ``None`` if the font lacks any of them (no "tofu": the character map is checked first)."""
    chars = _script_chars(script)
    if not font.covers(chars):
        return None
    face = ImageFont.truetype(font.path, RENDER_PX)
    images = [render_glyph(face, c, size) for c in chars]
    if any(image is None for image in images):
        return None
    return np.stack(images)


def render_glyphs(fonts: Sequence[FontFile], size: int = 32) -> dict:
    """Render every script of every font (exact duplicate renderings of a script dropped).

    Returns:
        A dict of tensors and lists: ``images`` ``(N, 1, size, size)`` uint8, ``chars`` (code
        points, ``(N,)``), ``font`` (row in ``fonts``, ``(N,)``), ``fonts`` (``[path, family,
        style, design, package, split]`` per font) and ``font_scripts`` (scripts per font).
    """
    images, chars, rows, font_scripts = [], [], [], []
    seen: set[bytes] = set()
    for i, font in enumerate(fonts):
        used = []
        for script in SCRIPTS:
            stack = render_font(font, script, size)
            if stack is None or (digest := hashlib.sha256(stack.tobytes()).digest()) in seen:
                continue
            seen.add(digest)
            used.append(script)
            images.append(stack)
            chars.extend(ord(c) for c in _script_chars(script))
            rows.extend([i] * len(stack))
        font_scripts.append(",".join(used))
    return {
        "images": torch.from_numpy(np.concatenate(images)).unsqueeze(1)
        if images
        else torch.zeros((0, 1, size, size), dtype=torch.uint8),
        "chars": torch.tensor(chars, dtype=torch.int64),
        "font": torch.tensor(rows, dtype=torch.int64),
        "fonts": [
            [f.path, f.family, f.style, f.typeface.design, f.typeface.package, f.typeface.split]
            for f in fonts
        ],  # fmt: skip
        "font_scripts": font_scripts,
    }


def _fingerprint(font_dirs: tuple[Path, ...], size: int) -> str:
    digest = hashlib.sha256()
    meta = [
        GLYPHS_VERSION,
        size,
        RENDER_PX,
        BOX_FRACTION,
        PIL.__version__,
        features.version("freetype2"),
    ]
    digest.update(json.dumps(meta).encode())
    for path in font_files(font_dirs):
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _rendered(size: int, font_dirs) -> dict:
    dirs = resolve_font_dirs(font_dirs)
    key = _fingerprint(dirs, size)
    if key in _MEMO:
        return _MEMO[key]
    path = cache_root() / "glyphs" / f"render-{size}-{key}.pt"
    blob = None
    if path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a damaged cache file is re-rendered, never trusted
            blob = None
    if blob is None:
        blob = render_glyphs(pinned_fonts(dirs), size)
        if len(blob["fonts"]):
            atomic_torch_save(path, blob)
    _MEMO[key] = blob
    return blob


def _check_scripts(scripts: Sequence[str] | str) -> tuple[str, ...]:
    scripts = (scripts,) if isinstance(scripts, str) else tuple(scripts)
    bad = [s for s in scripts if s not in SCRIPT_CLASSES]
    if not scripts or bad or len(set(scripts)) != len(scripts):
        raise ValueError(f"scripts must be distinct names from {SCRIPTS}, got {scripts!r}")
    return scripts


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for glyphs; valid splits: {', '.join(SPLITS)}")


def _fonts_for(blob: dict, script: str, split: str | None, font_dirs) -> list[int]:
    usable = [i for i, s in enumerate(blob["font_scripts"]) if script in s.split(",")]
    if len(usable) < MIN_FONTS:
        dirs = ", ".join(str(d) for d in resolve_font_dirs(font_dirs))
        raise DatasetNotFoundError(
            f"glyphs: only {len(usable)} usable font(s) for script {script!r} under {dirs} "
            f"(at least {MIN_FONTS} needed). Install the pinned typefaces with "
            f"`apt-get install {' '.join(FONT_PACKAGES)}` (Debian/Ubuntu), or point "
            "$SURVEY_FONT_DIRS at a folder holding them."
        )
    return [i for i in usable if split is None or blob["fonts"][i][5] == split]


_CHECKED: dict[str, list[str]] = {}


def _differences(blob: dict, key: str) -> list[str]:
    """Used fonts whose bytes differ from the pinned files of the same name (memoised)."""
    if key not in _CHECKED:
        from survey_lib.data.font_packages import pinned_files, sha256_file

        by_name = {Path(rel).name: digest for rel, digest in pinned_files().items()}
        _CHECKED[key] = [
            Path(font[0]).name
            for font, scripts in zip(blob["fonts"], blob["font_scripts"], strict=True)
            if scripts and by_name.get(Path(font[0]).name) != sha256_file(font[0])
        ]
    return _CHECKED[key]


def check_glyph_set(font_dirs=None, *, allow_other_fonts: bool = False) -> None:
    """Refuse a glyph set other than the committed one (default font folders only).

    Compares :func:`font_list_checksum` (32 px) with :data:`PINNED_FONT_LIST_CHECKSUM` and
    every used font file's SHA-256 with the pinned one. Explicit ``font_dirs`` (tests, your
    own fonts) are not checked; ``allow_other_fonts`` or ``$SURVEY_ALLOW_OTHER_GLYPHS=1``
    turn the check off.

    Raises:
        GlyphSetMismatchError: naming both checksums, the differing files and the remedies.
    """
    if font_dirs is not None or allow_other_fonts or os.environ.get(ALLOW_ENV, "") not in ("", "0"):
        return
    dirs = resolve_font_dirs(None)
    blob = _rendered(32, None)
    found = font_list_checksum(size=32, font_dirs=None)
    other = _differences(blob, _fingerprint(dirs, 32))
    if found == PINNED_FONT_LIST_CHECKSUM and not other:
        return
    used = sum(1 for s in blob["font_scripts"] if s)
    raise GlyphSetMismatchError(
        f"glyphs: the fonts under {', '.join(map(str, dirs))} give font-list checksum {found} "
        f"({used} fonts"
        + (
            f"; {len(other)} differ from the pinned files, e.g. {', '.join(other[:3])}"
            if other
            else ""
        )
        + f"), not the committed {PINNED_FONT_LIST_CHECKSUM}: results would not be comparable. "
        "Fetch the pinned Debian 12 font files into the user cache with "
        "`python -m survey_lib.data.font_packages fetch` (unset $SURVEY_FONT_DIRS), or install "
        f"`{' '.join(FONT_PACKAGES)}` at their Debian 12 versions; to run on these fonts anyway "
        f"pass allow_other_fonts=True (dataset option) or set {ALLOW_ENV}=1."
    )


def glyph_fonts(
    split: str = "train",
    scripts: Sequence[str] | str = ("latin",),
    *,
    size: int = 32,
    font_dirs=None,
) -> tuple[str, ...]:
    """Fonts that contribute to ``split`` for any of ``scripts``, as ``"Family Style (file)"``."""
    _check_split(split)
    blob = _rendered(size, font_dirs)
    rows = sorted(
        {i for s in _check_scripts(scripts) for i in _fonts_for(blob, s, split, font_dirs)}
    )
    return tuple(
        f"{blob['fonts'][i][1]} {blob['fonts'][i][2]} ({Path(blob['fonts'][i][0]).name})"
        for i in rows
    )


def font_list_checksum(*, size: int = 32, font_dirs=None) -> str:
    """SHA-256 (16 hex digits) of every used font's ``split: Family Style (file) scripts``
    line: identifies the font list behind a render (recorded in the data card)."""
    blob = _rendered(size, font_dirs)
    lines = [
        f"{font[5]}: {font[1]} {font[2]} ({Path(font[0]).name}) {scripts}"
        for font, scripts in zip(blob["fonts"], blob["font_scripts"], strict=True)
        if scripts
    ]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def load_glyphs(
    split: str = "train",
    *,
    scripts: Sequence[str] | str = ("latin",),
    size: int = 32,
    font_dirs=None,
    allow_other_fonts: bool = False,
) -> ImageDataset:
    """One split of the glyphs dataset.

    Args:
        split: ``"train"`` or ``"test"`` (disjoint typeface designs).
        scripts: any of ``"latin"`` (47 classes), ``"greek"`` (30), ``"cyrillic"`` (17); the
            classes of several scripts are concatenated in the given order.
        size: image side in pixels.
        font_dirs: folders to search instead of ``$SURVEY_FONT_DIRS`` / the default folders.
        allow_other_fonts: use default font folders whose glyph set differs from the committed
            one (see :func:`check_glyph_set`).

    Returns:
        ``uint8`` images ``(N, 1, size, size)`` (white glyph on black), ``int64`` labels, and the
        class names (the first character of each class).

    Raises:
        DatasetNotFoundError: fewer than :data:`MIN_FONTS` usable fonts for a script.
        GlyphSetMismatchError: default font folders with another glyph set than the
            committed one, not allowed.
    """
    _check_split(split)
    scripts = _check_scripts(scripts)
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    check_glyph_set(font_dirs, allow_other_fonts=allow_other_fonts)
    blob = _rendered(size, font_dirs)
    lookup: dict[int, int] = {}
    names: list[str] = []
    keep = torch.zeros(len(blob["chars"]), dtype=torch.bool)
    for script in scripts:
        rows = torch.zeros(len(blob["fonts"]), dtype=torch.bool)
        rows[_fonts_for(blob, script, split, font_dirs)] = True
        chars = torch.tensor([ord(c) for c in _script_chars(script)])
        keep |= rows[blob["font"]] & torch.isin(blob["chars"], chars)
        for members in SCRIPT_CLASSES[script]:
            lookup.update({ord(c): len(names) for c in members})
            names.append(members[0])
    labels = torch.tensor([lookup[int(c)] for c in blob["chars"][keep]], dtype=torch.int64)
    return ImageDataset("glyphs", split, blob["images"][keep].clone(), labels, tuple(names))


register_dataset(
    "glyphs",
    load_glyphs,
    splits=SPLITS,
    profile="offline",
    description="Latin/Greek/Cyrillic characters rendered from pinned Debian typefaces, 32x32, "
    "split by typeface",
    num_classes=len(SCRIPT_CLASSES["latin"]),
    split_sizes=DEFAULT_SPLIT_SIZES,
    image_shape=(1, 32, 32),
)
