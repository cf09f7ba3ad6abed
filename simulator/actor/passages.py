"""The passage of an article that answers a question best: most shared words wins."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")
_SKIP_TEXT = """a an and are as at be by can do does for from how i if in is it my of on or our
    the to what when where which who why will with you your"""
_SKIP = frozenset(_SKIP_TEXT.split())


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in _WORD.findall(text.lower()) if w not in _SKIP}


def best_passage(article: str, question: str) -> str | None:
    """The paragraph or list item of ``article`` (markdown) sharing most words with
    ``question``; None when nothing is shared."""
    wanted = _words(question)
    best, score = None, 0
    for raw in re.split(r"\n\s*\n|\n(?=[-*] |\d+\. |\|)", article):
        passage = " ".join(line.strip() for line in raw.splitlines()).strip()
        if not passage or passage.startswith("#") or set(passage) <= set("-|: "):
            continue
        shared = len(_words(passage) & wanted)
        if shared > score:
            best, score = re.sub(r"^(?:[-*] |\d+\. )", "", passage), shared
    return best
