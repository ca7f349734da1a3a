"""Every page links each glossary term from its first use in prose (fast: no build)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import glossary_links as gl  # noqa: E402

TERMS = gl.glossary_terms()
PAGES = sorted(
    [p for p in (ROOT / "book").glob("*.md") if p.name != "glossary.md"]
    + list((ROOT / "notebooks").glob("*.md"))
)


def _page(body: str) -> str:
    return "---\njupytext: {}\n---\n\n# Title with AnB and seeds\n\n" + body


def test_every_glossary_term_has_a_sense_and_no_sense_lacks_a_term() -> None:
    assert len(TERMS) >= 30, TERMS
    assert set(TERMS) == set(gl.SENSES), (
        f"glossary terms without a sense: {sorted(set(TERMS) - set(gl.SENSES))}; "
        f"senses without a glossary term: {sorted(set(gl.SENSES) - set(TERMS))}"
    )
    for term in ("negative transfer", "frozen", "fine-tuning", "transferability measure",
                 "H-score", "TransRate", "GBC", "L2-SP", "BSS", "DELTA"):
        assert term in TERMS


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_first_use_of_each_term_is_a_glossary_link(page: Path) -> None:
    missing = gl.unlinked(page, TERMS)
    text = page.read_text(encoding="utf-8")
    assert not missing, "\n".join(
        f"{page.relative_to(ROOT)}:{u.line(text)}: first use of {u.term!r} ({u.text!r}) is not "
        "a {term} link (python book/_ext/glossary_links.py --fix PAGE links it)"
        for u in missing
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_term_role_names_a_glossary_term(page: Path) -> None:
    names = {t.lower() for t in TERMS}
    for role in re.findall(r"\{term\}`[^`]*`", page.read_text(encoding="utf-8")):
        assert gl._role_target(role).lower() in names, f"{page.name}: {role} has no glossary entry"


def test_an_unlinked_first_use_is_found_and_fixed(tmp_path: Path) -> None:
    page = tmp_path / "x.md"
    page.write_text(_page("Frozen `AnB` beat `BnB+` over three seeds.\n\nLater AnB again.\n"))
    found = {u.term: u.text for u in gl.unlinked(page, TERMS)}
    assert found == {"frozen": "Frozen", "AnB": "`AnB`", "BnB+": "`BnB+`", "seed": "seeds"}
    gl.fix(page, TERMS)
    text = page.read_text(encoding="utf-8")
    assert ("{term}`Frozen <frozen>` {term}`AnB` beat {term}`BnB+` over three "
            "{term}`seeds <seed>`.") in text
    assert "Later AnB again." in text  # only the first use becomes a link
    assert "# Title with AnB and seeds" in text  # never inside a heading
    assert gl.unlinked(page, TERMS) == []


def test_code_roles_maths_and_links_are_not_prose(tmp_path: Path) -> None:
    body = (
        "```{code-cell} ipython3\nseeds = [0, 1]  # AnB\n```\n\n"
        "A {glue:text}`n_seeds:.0f` and {cite:t}`li2018l2sp` and `seeds` and $BSS$ and "
        "[LogME](https://example.org).\n\n"
        "```{glue:figure} fig_x\n:name: fig-x\n\nCaption about L2-SP.\n```\n"
    )
    page = tmp_path / "x.md"
    page.write_text(_page(body))
    found = {u.term: u.text for u in gl.unlinked(page, TERMS)}
    assert found == {"L2-SP": "L2-SP"}  # a figure caption is prose


def test_senses_tell_the_glossary_meaning_from_other_uses(tmp_path: Path) -> None:
    body = (
        "A large-scale study, a starting point, a fragile co-adaptation, the BnB dip.\n\n"
        "At the `cpu` scale the gap is 1.5 points; the verdict is *fragile*.\n"
    )
    first = gl.first_uses(_page(body), TERMS)
    assert {t: u.text for t, u in first.items()} == {
        "BnB": "BnB", "scale": "scale", "points": "points", "fragile": "fragile"}
    assert gl.first_uses("Seeds needed: 5. Over 3 seeds.\n", TERMS)["seed"].text == "seeds"


def test_verdict_prose_is_left_to_its_owner(tmp_path: Path) -> None:
    body = (
        "Claim 1 is {glue:text}`yos_v1` with 3 seeds.\n\n"
        "### Verdicts\n\nThe SESOI rule.\n\n"
        "## Next\n\nThe MDE here.\n"
    )
    first = gl.first_uses(_page(body), TERMS, skip_verdict_sections=True)
    assert set(first) == {"MDE"}
    first = gl.first_uses(_page(body), TERMS, skip_verdict_sections=False)
    assert set(first) == {"SESOI", "MDE"}
    owned = gl.first_uses(_page("Owned words: 3 seeds.\n"), TERMS, owned=("Owned words",))
    assert owned == {}


def test_a_link_elsewhere_counts_only_after_the_first_use(tmp_path: Path) -> None:
    text = _page("We ran LogME. Then {term}`LogME` again.\n")
    assert gl.first_uses(text, TERMS)["LogME"].linked is False
    text = _page("We ran {term}`the LogME score <LogME>`. Then LogME again.\n")
    assert gl.first_uses(text, TERMS)["LogME"].linked is True
