"""Glossary terms linked from their first use: find (and optionally link) the first prose use
of every term of ``book/glossary.md`` on a MyST page.

A page's *prose* is its Markdown outside front matter, code cells, fenced blocks that are not
prose (``{glossary}``, ``{math}``, plain code), headings, labels, directive options, maths,
links and roles (``{glue:text}``, ``{cite:t}``, ...). Inline code counts only where its content
is exactly a glossary term (```AnB+```). Paragraphs that state glued verdicts (a ``{glue:text}``
key ending in ``_v<claim>`` or ``_n_<verdict word>``), and on chapter pages the sections headed
"Verdicts", are left out: that prose is rewritten from each new result.

Each term has a *sense* (:data:`SENSES`): the regular expression of the uses that mean what the
glossary defines (``seeds`` always does; ``scale`` only next to ``smoke``/``cpu``/``gpu``), or
``None`` for a term that is linked by hand where it fits. A first use is *linked* when it is a
``{term}`` role.

Run ``python book/_ext/glossary_links.py PAGE...`` to list the unlinked first uses, or with
``--fix`` to link them in place (review the diff: the sense patterns are a heuristic).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GLOSSARY = ROOT / "book" / "glossary.md"

#: The uses of each glossary term that carry its glossary sense (a group whose name starts
#: with ``t``, when present, is the span that becomes the link; a space matches any run of
#: white space). ``None``: no pattern, linked by hand.
SENSES: dict[str, str | None] = {
    "baseB": r"\bbaseB\b",
    "BnB": r"\bBnB\b(?!\+)",
    "BnB+": r"\bBnB\+",
    "AnB": r"\bAnB\b(?!\+)",
    "AnB+": r"\bAnB\+",
    "random (frozen)": None,  # the control is named in many ways ("random filters", `random`)
    "points": r"(?:\d|\])\s+(?:percentage\s+|accuracy\s+)?(?P<t>points?)\b"
    r"|\b(?:percentage|accuracy)\s+(?P<t2>points?)\b",
    "rho": r"(?<![\w\\])(?P<t>ρ)(?!\w)|\bSpearman(?:'s)? (?:rank )?correlations?\b",
    "log10 lr": r"\blog10 lr\b",
    "NTG": r"\bNTG\b|\bnegative transfer gap\b",
    "LogME": r"\bLogME\b",
    "sampling rate": r"(?i)\bsampling[ -]rates?\b",
    "95 % interval": r"\b95 % (?:Student-t |t-|confidence )?intervals?\b",
    "scale": r"(?i)\b(?:smoke|cpu|gpu|published)`?\s+(?P<t>scales?)\b"
    r"|\b(?P<t2>scales?)\s+`?(?:smoke|cpu|gpu|published)\b",
    "profile": r"(?i)\b(?:offline|paper)`?\s+(?P<t>profiles?)\b"
    r"|\b(?P<t2>profiles?)\s+`?(?:offline|paper)\b",
    "seed": r"(?i)\bseeds?\b",
    "reproduced": r"\breproduced\b",
    "absent at this scale": r"\babsent at this scale\b",
    "reversed": r"\breversed\b",
    "inconclusive": r"\binconclusive\b",
    "SESOI": r"\bSESOI\b|\bsmallest effect(?: size)? of interest\b",
    "MDE": r"\bMDE\b|\bminimum detectable effects?\b",
    "seeds needed": r"(?i)\bseeds needed\b",
    "fragile": r"(?i)\*(?P<t>fragile)\*|\b(?P<t2>fragile) (?:verdicts?|claims?)\b"
    r"|\((?P<t3>fragile)\)",
    "negative transfer": r"(?i)\bnegative transfer\b(?! gap)",
    "fine-tuning": r"(?i)\bfine-tun(?:ing|ed|es|e)\b",
    "frozen": r"(?i)\bfrozen\b",
    "transferability measure": r"(?i)\btransferability (?:measures?|metrics?|estimators?)\b",
    "H-score": r"\bH-score\b",
    "NCE": r"\bNCE\b",
    "LEEP": r"\bLEEP\b",
    "TransRate": r"\bTransRate\b",
    "GBC": r"\bGBC\b",
    "L2-SP": r"\bL2-SP\b(?![+-])",
    "BSS": r"(?<![+\w])BSS\b",
    "DELTA": r"\bDELTA\b",
}

#: Verdict prose that states no glued verdict but is rewritten with each new result, by page
#: (repository path) and the words its paragraph opens with: skipped like glued verdict prose.
VERDICT_PROSE: dict[str, tuple[str, ...]] = {
    "book/best_practice_quadrants.md": ("Verdicts use the project's four words",),
    "book/transferability.md": (
        "**Verdicts on the published claims.**",
        "**Which measure to trust, and how far.**",
    ),
}

_VERDICT_GLUE = re.compile(
    r"\{glue:text\}`[A-Za-z0-9]+_(?:v\d+[a-z]?|n_(?:reproduced|reversed|inconclusive|"
    r"absent_at_this_scale|claims))(?::[^`]*)?`"
)
_ROLE = re.compile(r"\{([\w:.+-]+)\}`([^`]*)`")
_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[[^\]\n]*\]\([^)\n]*\)")
_MATH = re.compile(r"\$[^$\n]+\$")
_FENCE = re.compile(r"^(`{3,}|:{3,})\s*(\{[\w:.-]+\})?")
#: fenced blocks whose body is prose (only the opening line and options are skipped)
_PROSE_DIRECTIVES = {
    "{glue:figure}", "{figure}", "{admonition}", "{note}", "{tip}", "{warning}", "{important}",
    "{list-table}", "{table}", "{epigraph}", "{sidebar}", "{margin}", "{seealso}", "{hint}",
    "{attention}", "{caution}", "{danger}", "{error}",
}
_FILL = "\x00"


@dataclass(frozen=True)
class Use:
    """One use of a glossary term on a page: its span, text and whether it is a link."""

    term: str
    start: int
    end: int
    text: str
    linked: bool

    def line(self, page: str) -> int:
        return page.count("\n", 0, self.start) + 1


def glossary_terms(path: Path = GLOSSARY) -> list[str]:
    """The terms defined in the ``{glossary}`` blocks of ``path``, in order."""
    terms, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```{glossary}"):
            inside = True
        elif inside and line.startswith("```"):
            inside = False
        elif inside and line.strip() and not line[0].isspace():
            terms.append(line.strip())
    return terms


def _blank(chars: list[str], start: int, end: int, fill: str = _FILL) -> None:
    for i in range(start, end):
        if chars[i] != "\n":
            chars[i] = fill


def _heading_level(line: str) -> int:
    match = re.match(r"^(#{1,6})\s", line)
    return len(match.group(1)) if match else 0


def prose_mask(
    text: str, *, skip_verdict_sections: bool, owned: tuple[str, ...] = ()
) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with everything that is not prose blanked out (same length), and the spans of
    the ``{term}`` roles it holds. Paragraphs opening with one of ``owned`` count as verdict
    prose."""
    chars = list(text)
    lines = text.splitlines(keepends=True)
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line)
    fence: str | None = None
    prose_block = False
    options = False
    verdict_level = 0
    paragraph: list[int] = []

    def close_paragraph() -> None:
        block = "".join(lines[i] for i in paragraph)
        if _VERDICT_GLUE.search(block) or (owned and block.lstrip().startswith(owned)):
            for i in paragraph:
                _blank(chars, offsets[i], offsets[i] + len(lines[i]))
        paragraph.clear()

    for i, line in enumerate(lines):
        start, end = offsets[i], offsets[i] + len(line)
        stripped = line.strip()
        if i == 0 and stripped == "---":
            fence = "---"
            _blank(chars, start, end)
            continue
        if fence == "---":
            _blank(chars, start, end)
            if stripped == "---":
                fence = None
            continue
        match = _FENCE.match(stripped)
        if fence is not None:
            if stripped.startswith(fence) and stripped.strip(fence[0]) == "":
                fence, prose_block = None, False
                close_paragraph()
                _blank(chars, start, end)
                continue
            if not prose_block:
                _blank(chars, start, end)
                continue
            if options and re.match(r"^:[\w-]+:", stripped):
                _blank(chars, start, end)
                continue
            options = False
        elif match:
            close_paragraph()
            fence = match.group(1)
            prose_block = match.group(2) in _PROSE_DIRECTIVES
            options = True
            _blank(chars, start, end)
            continue
        level = _heading_level(line)
        if level:
            close_paragraph()
            if verdict_level and level <= verdict_level:
                verdict_level = 0
            if skip_verdict_sections and re.search(r"(?i)\bverdicts?\b", line):
                verdict_level = level
            _blank(chars, start, end)
            continue
        if verdict_level or re.match(r"^\(.*\)=\s*$", stripped) or stripped.startswith("<!--"):
            _blank(chars, start, end)
            continue
        if stripped == "$$" or stripped.startswith("$$"):
            close_paragraph()
            fence = "$$" if not (stripped.endswith("$$") and len(stripped) > 2) else None
            prose_block = False
            _blank(chars, start, end)
            continue
        if not stripped:
            close_paragraph()
        else:
            paragraph.append(i)
    close_paragraph()

    masked = "".join(chars)
    terms: list[tuple[int, int]] = []
    for m in _ROLE.finditer(masked):
        if m.group(1) == "term":
            terms.append((m.start(), m.end()))
        _blank(chars, m.start(), m.end(), "0" if m.group(1).startswith("glue") else _FILL)
    masked = "".join(chars)
    for pattern in (_LINK, _MATH):
        for m in pattern.finditer(masked):
            _blank(chars, m.start(), m.end())
    return "".join(chars), terms


def _role_target(role: str) -> str:
    inner = role[role.index("`") + 1 : -1]
    match = re.match(r"^(.*?)\s*<([^<>]+)>$", inner, flags=re.S)
    return (match.group(2) if match else inner).strip()


def uses(
    text: str, terms: list[str], *, skip_verdict_sections: bool = True, owned: tuple[str, ...] = ()
) -> list[Use]:
    """Every prose use of every term of ``terms`` that has a sense, in page order."""
    masked, roles = prose_mask(text, skip_verdict_sections=skip_verdict_sections, owned=owned)
    by_name = {t.lower(): t for t in terms}
    found: list[Use] = []
    for start, end in roles:
        target = _role_target(text[start:end])
        if target.lower() in by_name:
            found.append(Use(by_name[target.lower()], start, end, text[start:end], True))
    codes = [(m.start(), m.end(), m.group(1)) for m in _CODE.finditer(masked)]
    for start, end, content in codes:
        if content in terms:
            found.append(Use(content, start, end, text[start:end], False))
    candidates: list[Use] = []
    for term in terms:
        sense = SENSES.get(term)
        if sense is None:
            continue
        for m in re.finditer(sense.replace(" ", r"\s+"), masked):  # a use may wrap a line
            group = next((g for g, v in m.groupdict().items() if g.startswith("t") and v), None)
            start, end = (m.start(group), m.end(group)) if group else (m.start(), m.end())
            if any(s <= start < e for s, e, _ in codes):
                continue
            candidates.append(Use(term, start, end, text[start:end], False))
    # a use inside a longer use of another term belongs to that term ("seeds needed")
    for use in candidates:
        if not any(
            o is not use and o.start <= use.start and use.end <= o.end
            and (o.end - o.start) > (use.end - use.start)
            for o in candidates
        ):
            found.append(use)
    return sorted(found, key=lambda u: (u.start, -u.end))


def first_uses(
    text: str,
    terms: list[str] | None = None,
    *,
    skip_verdict_sections: bool = True,
    owned: tuple[str, ...] = (),
) -> dict[str, Use]:
    """The first prose use of each term used on the page."""
    terms = terms if terms is not None else glossary_terms()
    first: dict[str, Use] = {}
    for use in uses(text, terms, skip_verdict_sections=skip_verdict_sections, owned=owned):
        first.setdefault(use.term, use)
    return first


def is_chapter(path: Path) -> bool:
    """Chapter pages skip their "Verdicts" sections; reproduction notebooks do not."""
    return path.parent.name == "book"


def unlinked(path: Path, terms: list[str] | None = None) -> list[Use]:
    """The first uses on page ``path`` that are not ``{term}`` links."""
    text = path.read_text(encoding="utf-8")
    resolved = path.resolve()
    key = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else path.name
    first = first_uses(
        text, terms, skip_verdict_sections=is_chapter(path), owned=VERDICT_PROSE.get(key, ())
    )
    return [u for u in first.values() if not u.linked]


def link(text: str, use: Use) -> str:
    """``text`` with ``use`` written as a ``{term}`` role."""
    shown = " ".join(use.text.strip("`").split())
    role = f"{{term}}`{shown}`" if shown == use.term else f"{{term}}`{shown} <{use.term}>`"
    return text[: use.start] + role + text[use.end :]


def fix(path: Path, terms: list[str] | None = None) -> list[Use]:
    """Link every unlinked first use on page ``path`` in place; return the uses linked."""
    done = []
    while True:
        todo = unlinked(path, terms)
        if not todo:
            return done
        use = todo[0]
        path.write_text(link(path.read_text(encoding="utf-8"), use), encoding="utf-8")
        done.append(use)


def main(argv: list[str]) -> int:
    apply = "--fix" in argv
    pages = [Path(a) for a in argv if a != "--fix"]
    missing = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for use in fix(page) if apply else unlinked(page):
            missing += 1
            print(f"{page}:{use.line(text)}: {use.term!r} first used as {use.text!r}")
    return 0 if apply or not missing else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
