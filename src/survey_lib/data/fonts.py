"""The pinned typefaces the ``glyphs`` dataset is rendered from, and how they are found.

Only families in :data:`TYPEFACES` are used, so installing other fonts never changes the
dataset. Symbol, dingbat, math, music, keyboard and initials fonts (URW D050000L and Standard
Symbols PS, Noto Sans Symbols/Symbols2/Math, Noto Music, DejaVu Math TeX Gyre, Linux Biolinum
Keyboard, Linux Libertine Initials, the MathJax TeX fonts) and Noto's fonts for other scripts
are left out by that list. Monospaced designs are kept: their letters have shapes of their own.

Where the fonts come from (:func:`resolve_font_dirs`): an explicit ``font_dirs``, else
``$SURVEY_FONT_DIRS``, else the system folders :data:`FONT_DIRS` when they hold every pinned
font file byte for byte (Debian 12 with the packages installed), else the pinned packages'
files unpacked into a user cache (:mod:`survey_lib.data.font_packages`, fetched on first use
unless ``$SURVEY_FONTS_NO_FETCH`` is set), so the data set is the same on any Linux.

Each family belongs to a *design*: metric-compatible clones of one design (Nimbus Sans, FreeSans
and TeX Gyre Heros all follow Helvetica) share it, and so do a family's condensed and display
cuts. The train/test split is by design, so no test typeface is a clone of a training one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTFont

FONT_PACKAGES: tuple[str, ...] = (
    "fonts-dejavu-core",
    "fonts-dejavu-extra",
    "fonts-liberation",
    "fonts-freefont-ttf",
    "fonts-noto-core",
    "fonts-urw-base35",
    "fonts-texgyre",
    "fonts-croscore",
    "fonts-linuxlibertine",
    "fonts-ebgaramond",
    "fonts-lato",
    "fonts-open-sans",
    "fonts-roboto",
    "fonts-paratype",
    "fonts-cantarell",
    "fonts-crosextra-caladea",
    "fonts-comic-neue",
)
"""Debian packages providing :data:`TYPEFACES` (``apt-get install`` them all)."""

FONT_DIRS: tuple[str, ...] = ("/usr/share/fonts", "/usr/share/texmf/fonts/opentype/public/tex-gyre")
"""Folders searched (recursively, symlinked folders not followed) unless ``$SURVEY_FONT_DIRS``
(``os.pathsep``-separated) or an explicit ``font_dirs`` says otherwise."""

FONT_SUFFIXES = (".ttf", ".otf")

# family (typographic family name, name ID 16, else name ID 1) -> (package, design, split)
_TABLE: dict[str, tuple[str, str, str]] = {
    "DejaVu Sans": ("fonts-dejavu-core", "DejaVu Sans", "train"),
    "DejaVu Sans Mono": ("fonts-dejavu-core", "DejaVu Sans Mono", "train"),
    "DejaVu Serif": ("fonts-dejavu-core", "DejaVu Serif", "test"),
    "Liberation Sans": ("fonts-liberation", "Liberation Sans", "train"),
    "Liberation Sans Narrow": ("fonts-liberation", "Liberation Sans", "train"),
    "Arimo": ("fonts-croscore", "Liberation Sans", "train"),
    "Liberation Serif": ("fonts-liberation", "Liberation Serif", "train"),
    "Tinos": ("fonts-croscore", "Liberation Serif", "train"),
    "Liberation Mono": ("fonts-liberation", "Liberation Mono", "test"),
    "Cousine": ("fonts-croscore", "Liberation Mono", "test"),
    "Nimbus Sans": ("fonts-urw-base35", "Helvetica", "train"),
    "Nimbus Sans Narrow": ("fonts-urw-base35", "Helvetica", "train"),
    "FreeSans": ("fonts-freefont-ttf", "Helvetica", "train"),
    "TeX Gyre Heros": ("fonts-texgyre", "Helvetica", "train"),
    "TeX Gyre Heros Cn": ("fonts-texgyre", "Helvetica", "train"),
    "Nimbus Roman": ("fonts-urw-base35", "Times", "train"),
    "FreeSerif": ("fonts-freefont-ttf", "Times", "train"),
    "TeX Gyre Termes": ("fonts-texgyre", "Times", "train"),
    "Nimbus Mono PS": ("fonts-urw-base35", "Courier", "train"),
    "FreeMono": ("fonts-freefont-ttf", "Courier", "train"),
    "TeX Gyre Cursor": ("fonts-texgyre", "Courier", "train"),
    "C059": ("fonts-urw-base35", "Century Schoolbook", "train"),
    "TeX Gyre Schola": ("fonts-texgyre", "Century Schoolbook", "train"),
    "P052": ("fonts-urw-base35", "Palatino", "test"),
    "TeX Gyre Pagella": ("fonts-texgyre", "Palatino", "test"),
    "URW Bookman": ("fonts-urw-base35", "Bookman", "train"),
    "TeX Gyre Bonum": ("fonts-texgyre", "Bookman", "train"),
    "URW Gothic": ("fonts-urw-base35", "Avant Garde", "train"),
    "TeX Gyre Adventor": ("fonts-texgyre", "Avant Garde", "train"),
    "Z003": ("fonts-urw-base35", "Zapf Chancery", "train"),
    "TeX Gyre Chorus": ("fonts-texgyre", "Zapf Chancery", "train"),
    "Noto Sans": ("fonts-noto-core", "Noto Sans", "train"),
    "Noto Sans Display": ("fonts-noto-core", "Noto Sans", "train"),
    "Noto Serif": ("fonts-noto-core", "Noto Serif", "train"),
    "Noto Serif Display": ("fonts-noto-core", "Noto Serif", "train"),
    "Linux Libertine O": ("fonts-linuxlibertine", "Linux Libertine", "train"),
    "Linux Libertine Display O": ("fonts-linuxlibertine", "Linux Libertine", "train"),
    "Linux Libertine Mono O": ("fonts-linuxlibertine", "Linux Libertine Mono", "train"),
    "Linux Biolinum O": ("fonts-linuxlibertine", "Linux Biolinum", "test"),
    "EB Garamond": ("fonts-ebgaramond", "Garamond", "train"),
    "Lato": ("fonts-lato", "Lato", "test"),
    "Open Sans": ("fonts-open-sans", "Open Sans", "train"),
    "Open Sans Condensed": ("fonts-open-sans", "Open Sans", "train"),
    "Roboto": ("fonts-roboto", "Roboto", "train"),
    "Roboto Condensed": ("fonts-roboto", "Roboto", "train"),
    "PT Sans": ("fonts-paratype", "PT Sans", "train"),
    "PT Sans Caption": ("fonts-paratype", "PT Sans", "train"),
    "PT Sans Narrow": ("fonts-paratype", "PT Sans", "train"),
    "PT Serif": ("fonts-paratype", "PT Serif", "train"),
    "PT Serif Caption": ("fonts-paratype", "PT Serif", "train"),
    "PT Mono": ("fonts-paratype", "PT Mono", "train"),
    "Cantarell": ("fonts-cantarell", "Cantarell", "train"),
    "Caladea": ("fonts-crosextra-caladea", "Caladea", "train"),
    "Comic Neue": ("fonts-comic-neue", "Comic Neue", "test"),
}


@dataclass(frozen=True)
class Typeface:
    """One pinned family: its Debian package, its design and the split its fonts belong to."""

    family: str
    package: str
    design: str
    split: str


TYPEFACES: tuple[Typeface, ...] = tuple(Typeface(f, *v) for f, v in sorted(_TABLE.items()))
"""Every family the dataset may use; the split is fixed per design (about a fifth of the fonts
are test fonts: DejaVu Serif, Palatino, Lato, Liberation Mono, Linux Biolinum, Comic Neue)."""

_BY_FAMILY = {t.family: t for t in TYPEFACES}


@dataclass(frozen=True)
class FontFile:
    """One font file of a pinned family.

    Attributes:
        path: absolute path of the ``.ttf``/``.otf`` file.
        family: typographic family name.
        style: typographic subfamily name (e.g. ``"Bold Italic"``).
        typeface: the :class:`Typeface` entry (package, design, split).
        codepoints: every code point the font's Unicode character map covers.
    """

    path: str
    family: str
    style: str
    typeface: Typeface
    codepoints: frozenset[int]

    @property
    def font_id(self) -> str:
        """``"Family Style (file name)"``: identifies the font in listings and data cards."""
        return f"{self.family} {self.style} ({Path(self.path).name})"

    def covers(self, chars: str) -> bool:
        """Whether the character map has every character of ``chars`` (no "tofu" boxes)."""
        return all(ord(c) in self.codepoints for c in chars)


@cache
def system_has_pinned_fonts() -> bool:
    """Whether ``/`` holds every pinned font file with its pinned SHA-256 (memoised)."""
    from survey_lib.data.font_packages import tree_has_pinned_fonts

    return tree_has_pinned_fonts("/")


_VERIFIED_TREES: set[str] = set()


def _under(root: Path) -> tuple[Path, ...]:
    return tuple(root / d.lstrip("/") for d in FONT_DIRS)


def default_font_dirs() -> tuple[Path, ...]:
    """:data:`FONT_DIRS` when the system has the pinned files, else the same folders in the
    user cache of :mod:`survey_lib.data.font_packages`, fetched there when missing (unless
    ``$SURVEY_FONTS_NO_FETCH`` is set, when the cache is used as it is)."""
    if system_has_pinned_fonts():
        return tuple(Path(d) for d in FONT_DIRS)
    from survey_lib.data import font_packages

    tree = font_packages.cache_tree()
    if str(tree) in _VERIFIED_TREES:
        return _under(tree)
    if font_packages.tree_has_pinned_fonts(tree):
        _VERIFIED_TREES.add(str(tree))
    elif not os.environ.get("SURVEY_FONTS_NO_FETCH"):
        try:
            font_packages.fetch_fonts(tree)
            _VERIFIED_TREES.add(str(tree))
        except font_packages.FontFetchError as exc:
            import warnings

            warnings.warn(
                f"the system lacks the pinned glyph typefaces and fetching them failed: {exc}",
                stacklevel=2,
            )
    return _under(tree)


def resolve_font_dirs(
    font_dirs: tuple[str, ...] | list[str] | str | None = None,
) -> tuple[Path, ...]:
    """``font_dirs``, else ``$SURVEY_FONT_DIRS``, else :func:`default_font_dirs`."""
    if font_dirs is None:
        env = os.environ.get("SURVEY_FONT_DIRS")
        if not env:
            return default_font_dirs()
        font_dirs = tuple(env.split(os.pathsep))
    elif isinstance(font_dirs, str | os.PathLike):
        font_dirs = (font_dirs,)
    return tuple(Path(d).expanduser() for d in font_dirs)


def font_files(font_dirs: tuple[Path, ...]) -> list[Path]:
    """All ``.ttf``/``.otf`` files under ``font_dirs``, sorted by path (deterministic order)."""
    found: set[Path] = set()
    for root in font_dirs:
        for dirpath, _, filenames in os.walk(root):
            found.update(Path(dirpath) / f for f in filenames if f.lower().endswith(FONT_SUFFIXES))
    return sorted(found, key=str)


def read_font(path: str | Path) -> FontFile | None:
    """The :class:`FontFile` for ``path``, or ``None`` if its family is not pinned, it is a
    symbol-encoded font, or it cannot be parsed."""
    try:
        with TTFont(path, lazy=True) as font:
            names = font["name"]
            family = names.getDebugName(16) or names.getDebugName(1)
            style = names.getDebugName(17) or names.getDebugName(2) or "Regular"
            if family not in _BY_FAMILY:
                return None
            cmap = font["cmap"]
            if all(t.platformID == 3 and t.platEncID == 0 for t in cmap.tables):
                return None  # symbol encoding: letters sit at private-use code points
            codepoints = frozenset(cmap.getBestCmap() or {})
    except Exception:  # an unreadable file is not a usable font, whatever the reason
        return None
    return FontFile(str(path), family, style, _BY_FAMILY[family], codepoints)


def pinned_fonts(font_dirs: tuple[str, ...] | list[str] | str | None = None) -> list[FontFile]:
    """Fonts of pinned families under ``font_dirs``, one per (family, style), sorted by path.

    When two files carry the same family and style (e.g. hinted and unhinted copies), the first
    by path is kept.
    """
    seen: set[tuple[str, str]] = set()
    fonts = []
    for path in font_files(resolve_font_dirs(font_dirs)):
        font = read_font(path)
        if font is not None and (font.family, font.style) not in seen:
            seen.add((font.family, font.style))
            fonts.append(font)
    return fonts
