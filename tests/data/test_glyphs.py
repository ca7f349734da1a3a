"""The glyphs dataset, rendered from a small real subset of the pinned fonts (DejaVu, TeX Gyre
Termes) so the whole file runs in a few seconds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from survey_lib.data import DatasetNotFoundError, get_dataset, glyphs
from survey_lib.data.fonts import TYPEFACES, FontFile, read_font

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
TERMES = Path("/usr/share/texmf/fonts/opentype/public/tex-gyre")

pytestmark = pytest.mark.skipif(
    not (DEJAVU / "DejaVuSans.ttf").is_file()
    or not (TERMES / "texgyretermes-regular.otf").is_file(),
    reason="needs fonts-dejavu-core, fonts-dejavu-extra and fonts-texgyre",
)


@pytest.fixture(scope="module")
def font_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Symlinks to every DejaVu file and the four TeX Gyre Termes files, and a fresh cache."""
    root = tmp_path_factory.mktemp("fonts")
    for path in sorted(DEJAVU.glob("*.ttf")) + sorted(TERMES.glob("texgyretermes-*.otf")):
        (root / path.name).symlink_to(path)
    old = os.environ.get("SURVEY_CACHE_DIR")
    os.environ["SURVEY_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    glyphs._MEMO.clear()
    yield root
    glyphs._MEMO.clear()
    if old is None:
        os.environ.pop("SURVEY_CACHE_DIR")
    else:
        os.environ["SURVEY_CACHE_DIR"] = old


def test_shapes_dtypes_and_class_counts(font_dir: Path) -> None:
    expected = {"latin": 47, "greek": 30, "cyrillic": 17}
    for script, classes in expected.items():
        data = glyphs.load_glyphs("train", scripts=(script,), font_dirs=(str(font_dir),))
        assert data.images.dtype == torch.uint8 and data.images.shape[1:] == (1, 32, 32)
        assert data.labels.dtype == torch.int64
        assert data.num_classes == classes
        counts = torch.bincount(data.labels, minlength=classes)
        members = torch.tensor([len(m) for m in glyphs.SCRIPT_CLASSES[script]])
        fonts = len(glyphs.glyph_fonts("train", (script,), font_dirs=(str(font_dir),)))
        assert torch.equal(counts, members * fonts)  # every font draws every member once
    both = glyphs.load_glyphs("test", scripts=("greek", "cyrillic"), font_dirs=(str(font_dir),))
    assert both.num_classes == 47 and len(set(both.class_names)) == 47


def test_registry_and_bad_options(font_dir: Path) -> None:
    data = get_dataset("glyphs", "test", scripts=("latin",), font_dirs=(str(font_dir),))
    assert data.name == "glyphs" and data.split == "test" and data.class_names[10] == "A"
    with pytest.raises(ValueError, match="scripts must be"):
        glyphs.load_glyphs("train", scripts=("klingon",), font_dirs=(str(font_dir),))
    with pytest.raises(ValueError, match="valid splits"):
        glyphs.load_glyphs("val", font_dirs=(str(font_dir),))


def test_rendering_is_deterministic_and_cached(font_dir: Path) -> None:
    first = glyphs.load_glyphs("train", font_dirs=(str(font_dir),))
    glyphs._MEMO.clear()  # force a read of the cache file
    cached = glyphs.load_glyphs("train", font_dirs=(str(font_dir),))
    font = read_font(DEJAVU / "DejaVuSans.ttf")
    again = glyphs.render_glyphs([font, font])
    fresh = glyphs.render_glyphs([font])
    assert first.checksum == cached.checksum
    assert torch.equal(again["images"], fresh["images"])  # second copy is an exact duplicate
    assert again["font_scripts"] == ["latin,greek,cyrillic", ""]
    assert list((Path(os.environ["SURVEY_CACHE_DIR"]) / "glyphs").glob("render-32-*.pt"))


def test_no_tofu_fonts_lacking_a_script_are_skipped(font_dir: Path) -> None:
    termes = read_font(TERMES / "texgyretermes-regular.otf")
    assert termes is not None and termes.covers("ABCxyz019αβγ") and not termes.covers("БДЖ")
    assert glyphs.render_font(termes, "cyrillic") is None
    assert glyphs.render_font(termes, "latin").shape == (62, 32, 32)
    fake = FontFile(termes.path, termes.family, termes.style, termes.typeface, frozenset({65}))
    assert fake.covers("A") and not fake.covers("AB")
    latin = glyphs.glyph_fonts("train", ("latin",), font_dirs=(str(font_dir),))
    cyrillic = glyphs.glyph_fonts("train", ("cyrillic",), font_dirs=(str(font_dir),))
    assert any("TeX Gyre Termes" in f for f in latin)
    assert not any("TeX Gyre Termes" in f for f in cyrillic)
    assert read_font(DEJAVU / "DejaVuMathTeXGyre.ttf") is None  # a math font is not pinned


def test_train_and_test_typefaces_are_disjoint(font_dir: Path) -> None:
    train = glyphs.glyph_fonts("train", glyphs.SCRIPTS, font_dirs=(str(font_dir),))
    test = glyphs.glyph_fonts("test", glyphs.SCRIPTS, font_dirs=(str(font_dir),))
    assert train and test and not set(train) & set(test)
    assert all("DejaVu Serif" in f for f in test)
    designs = {
        split: {t.design for t in TYPEFACES if t.split == split} for split in ("train", "test")
    }
    assert not designs["train"] & designs["test"]
    assert len(designs["test"]) >= 4


def test_glyphs_are_centred_and_scaled(font_dir: Path) -> None:
    data = glyphs.load_glyphs("train", scripts=glyphs.SCRIPTS, font_dirs=(str(font_dir),))
    images = data.images[:, 0].numpy().astype(np.float64)
    centre = (32 - 1) / 2
    longer, offsets = [], []
    for image in images:
        rows, cols = np.nonzero(image > 0)
        longer.append(max(rows.max() - rows.min(), cols.max() - cols.min()) + 1)
        offsets.append(
            ((rows.max() + rows.min()) / 2 - centre, (cols.max() + cols.min()) / 2 - centre)
        )
    assert np.all(np.abs(np.asarray(longer) - 24) <= 1)  # 24 px box, resampling may bleed 1 px
    assert np.all(np.abs(np.asarray(offsets)) <= 1.0)  # bounding box centred
    grid = np.arange(32, dtype=np.float64)
    mass = images.sum(axis=(1, 2))
    com_r = (images.sum(axis=2) @ grid) / mass
    com_c = (images.sum(axis=1) @ grid) / mass
    assert abs(com_r.mean() - centre) < 1.0 and abs(com_c.mean() - centre) < 1.0
    assert np.all(np.abs(com_r - centre) < 6) and np.all(np.abs(com_c - centre) < 6)


def test_too_few_fonts_names_the_packages(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="fonts-dejavu-core") as info:
        glyphs.load_glyphs("train", font_dirs=(str(tmp_path),))
    assert "apt-get install" in str(info.value) and "0 usable font" in str(info.value)


@pytest.mark.slow
def test_full_render_matches_the_data_card() -> None:
    """Sizes and tensor checksums of the full render (all pinned fonts) equal the card's.

    Fails when a font package, Pillow or FreeType version changes the pixels: then re-measure
    and update ``data_cards/glyphs.yaml`` and :data:`glyphs.DEFAULT_SPLIT_SIZES` together.
    """
    import yaml

    card = yaml.safe_load((Path(__file__).parents[2] / "data_cards" / "glyphs.yaml").read_text())
    assert glyphs.font_list_checksum() == card["checksums"]["font-list"]
    for split in glyphs.SPLITS:
        for script in glyphs.SCRIPTS:
            data = glyphs.load_glyphs(split, scripts=(script,))
            assert data.checksum == card["checksums"][f"{script}-{split}"], (script, split)
        assert len(glyphs.load_glyphs(split)) == card[f"{split}_size"]
    assert glyphs.DEFAULT_SPLIT_SIZES == {"train": card["train_size"], "test": card["test_size"]}
