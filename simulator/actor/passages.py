"""The passage of an article that answers a question best: most shared words wins."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")
_SKIP_TEXT = """a an and are as at be by can do does for from how i if in is it my of on or our
    the to what when where which who why will with you your"""
_SKIP = frozenset(_SKIP_TEXT.split())


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in _WORD.findall(text.lower()) if w not in _SKIP}


_ITEM = re.compile(r"^(?:[-*] |\d+\. )")
_DURATION = re.compile(r"\d+(?:-\d+)? (?:business )?days")
_ASKS_DURATION = re.compile(r"how long|how many days|when will|how soon", re.IGNORECASE)


def _passages(article: str) -> list[str]:
    out = []
    for raw in re.split(r"\n\s*\n|\n(?=[-*] |\d+\. |\|)", article):
        lines = [line.strip() for line in raw.splitlines() if not line.strip().startswith("#")]
        passage = " ".join(lines).strip()
        if passage.startswith("|"):  # a table row: its cells
            passage = " | ".join(cell.strip() for cell in passage.strip("|").split("|"))
        if passage and not set(passage) <= set("-|: "):
            out.append(passage)
    return out


def best_passage(article: str, question: str) -> str | None:
    """The paragraph or list item of ``article`` (markdown) sharing most words with
    ``question`` (a "how long" question prefers a passage that names a duration), with the
    list that follows a passage ending in a colon; None when nothing is shared."""
    wanted = _words(question)
    duration = bool(_ASKS_DURATION.search(question))
    passages = _passages(article)
    best, score = -1, 0
    for index, passage in enumerate(passages):
        shared = len(_words(passage) & wanted) + (duration and bool(_DURATION.search(passage)))
        if shared > score:
            best, score = index, shared
    if best < 0:
        return None
    chosen = [passages[best]]
    if chosen[0].endswith(":"):
        chosen += [p for p in passages[best + 1 : best + 5] if _ITEM.match(p)]
    return " ".join(_ITEM.sub("", p) for p in chosen)
