"""The knowledge-base MCP server: ranked search over bundled markdown articles.

Articles live in ``articles/*.md``; the file stem is the article id and the first line is
``# Title``. They are loaded once at start: the corpus is tiny and read-only, so both tools
are pure functions of their arguments (read-only, idempotent, closed world).

Scoring is deliberately simple and explainable, so a test or a human can predict the ranking:

1. Tokenize: lowercase ``[a-z0-9]+`` words, drop English stop words, and fold plural and
   past-tense endings (``refunds``/``refunded`` → ``refund``, see :func:`stem`).
2. For each distinct query term ``t`` found in an article:
   ``idf(t) * (TITLE_WEIGHT * title_hits(t) + 1 + ln(body_hits(t)))`` where the body part
   counts only if ``body_hits(t) > 0``. ``idf(t) = ln(1 + N / df(t))`` (``N`` articles,
   ``df`` = how many contain ``t``), so words found everywhere ("order") weigh less than
   distinctive ones ("damaged"), and the log stops one word repeated many times from
   outweighing several different matching words.
3. The article score is the sum over query terms; articles scoring 0 are left out, ties are
   broken by article id. Title words weigh ``TITLE_WEIGHT`` = 3 times a body occurrence.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from mcp_servers.shared.auth.resource import ResourceAuth
from mcp_servers.shared.server import KeelMCPServer

SERVER_NAME = "knowledge"
ARTICLES_DIR = Path(__file__).parent / "articles"
TITLE_WEIGHT = 3.0
SNIPPET_CHARS = 240

_STOP_TEXT = """a about after all also an and any are as at be been before being but by can could do
    does for from get got had has have how i if in into is it its just may me my no not of on
    once or our out over please should so some take than that the their them then there these
    they this those to too under until up us was we were what when where which while who why
    will with would you your"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+")


_SUFFIXES = (("ies", "y"), ("ing", ""), ("es", ""), ("ed", ""), ("s", ""))


def stem(word: str) -> str:
    """Fold common English endings so related forms share a key, without a dictionary.

    One suffix of ``ies``/``ing``/``es``/``ed``/``s`` is removed (a doubled final consonant
    left by ``ing``/``ed`` is undoubled), then a final ``e``: 'refunds'/'refunded' → 'refund',
    'shipping'/'shipped'/'ships' → 'ship', 'damaged'/'damage' → 'damag'. The keys are not
    words; they only need to agree between query and article.
    """
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            doubled = len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz"
            if suffix in ("ing", "ed") and doubled:
                word = word[:-1]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lowercased, stop-word-free, suffix-folded words of ``text``."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


@dataclass(frozen=True)
class Article:
    article_id: str
    title: str
    text: str
    title_terms: Counter[str]
    body_terms: Counter[str]
    passages: tuple[tuple[str, frozenset[str]], ...]
    """Paragraphs, list items and table rows with their terms, for snippets."""


_ITEM = re.compile(r"^(?:[-*] |\d+\. )")


def passages(body: str) -> list[str]:
    """Split markdown into paragraphs, list items and table rows, joining hard-wrapped lines."""
    out: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or set(stripped) <= set("-|: "):
            out.append("")
        elif stripped.startswith("|"):
            out.append(" | ".join(c.strip() for c in stripped.strip("|").split("|")))
        elif _ITEM.match(stripped) or not out or not out[-1]:
            out.append(_ITEM.sub("", stripped))
        else:
            out[-1] += " " + stripped
    return [p for p in out if p]


class ArticleHit(BaseModel):
    article_id: str
    title: str
    snippet: str = Field(description="The passage that matches the query best.")
    score: float = Field(description="Relevance; higher is better (see the server docs).")


class SearchResults(BaseModel):
    query: str
    results: list[ArticleHit] = Field(description="Best first; empty when nothing matches.")


class ArticleText(BaseModel):
    article_id: str
    title: str
    text: str = Field(description="The full article in markdown, title line included.")


def load_articles(directory: Path = ARTICLES_DIR) -> dict[str, Article]:
    """Read every ``*.md`` in ``directory``; the first line must be ``# Title``.

    Raises ``ValueError`` for a malformed article or an empty directory, ``OSError`` if
    the directory cannot be read.
    """
    articles: dict[str, Article] = {}
    for path in sorted(directory.glob("*.md")):
        text = path.read_text(encoding="utf-8").strip()
        first, _, body = text.partition("\n")
        if not first.startswith("# "):
            raise ValueError(f"{path} must start with a '# Title' line")
        title = first[2:].strip()
        articles[path.stem] = Article(
            article_id=path.stem,
            title=title,
            text=text,
            title_terms=Counter(tokenize(title)),
            body_terms=Counter(tokenize(body)),
            passages=tuple((p, frozenset(tokenize(p))) for p in passages(body)),
        )
    if not articles:
        # An install that lost the bundled files must fail loudly, not answer "no results".
        raise ValueError(f"no articles (*.md) found in {directory}")
    return articles


class KnowledgeBase:
    """The loaded articles plus the document frequencies the scoring needs."""

    def __init__(self, articles: dict[str, Article]) -> None:
        self.articles = articles
        self._df: Counter[str] = Counter()
        for article in articles.values():
            self._df.update(set(article.title_terms) | set(article.body_terms))

    def idf(self, term: str) -> float:
        return math.log(1 + len(self.articles) / self._df[term]) if self._df[term] else 0.0

    def score(self, article: Article, terms: set[str]) -> float:
        total = 0.0
        for term in terms:
            body_hits = article.body_terms[term]
            weight = TITLE_WEIGHT * article.title_terms[term]
            if body_hits:
                weight += 1 + math.log(body_hits)
            total += self.idf(term) * weight
        return total

    def search(self, query: str, limit: int) -> list[ArticleHit]:
        terms = set(tokenize(query))
        scored = [(self.score(a, terms), a) for a in self.articles.values()]
        ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1].article_id))
        return [
            ArticleHit(
                article_id=a.article_id,
                title=a.title,
                snippet=snippet(a, terms),
                score=round(s, 3),
            )
            for s, a in ranked[:limit]
        ]


def snippet(article: Article, terms: set[str]) -> str:
    """The passage sharing the most distinct terms with the query (first wins), trimmed."""
    if not article.passages:
        return ""
    best, _ = max(article.passages, key=lambda p: len(terms & p[1]))
    if len(best) <= SNIPPET_CHARS:
        return best
    return best[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"


async def _pause(latency_ms: int) -> None:
    if latency_ms:
        await asyncio.sleep(latency_ms / 1000)


READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
# The scope an access token needs for each tool (docs/security.md): reading is all there is.
TOOL_SCOPES = {"search_knowledge": "kb:read", "get_article": "kb:read"}


def create_server(
    kb: KnowledgeBase | None = None,
    latency_ms: int = 0,
    resource_auth: ResourceAuth | None = None,
) -> MCPServer:
    """Build the server over ``kb`` (default: the bundled articles). ``latency_ms``: an
    artificial ``asyncio.sleep`` before every call (to show concurrent calls overlap);
    ``resource_auth`` (the launcher's, over HTTP): every call needs a ``kb:read`` token."""
    kb = kb or KnowledgeBase(load_articles())
    server = _new_server(resource_auth)

    @server.tool(
        name="search_knowledge",
        title="Search knowledge base",
        description="Rank support-policy articles by relevance to the query (term frequency,"
        " title matches weigh more). Returns an empty list when nothing matches.",
        annotations=READ_ONLY,
    )
    async def search_knowledge(
        query: Annotated[
            str,
            Field(
                min_length=1,
                max_length=200,
                description="Keywords or a question, e.g. 'refund damaged shoes'.",
            ),
        ],
        limit: Annotated[int, Field(ge=1, le=10, description="Maximum articles to return.")] = 3,
    ) -> SearchResults:
        await _pause(latency_ms)
        return SearchResults(query=query, results=kb.search(query, limit))

    @server.tool(
        name="get_article",
        title="Get article",
        description="The full text of one article by id (as returned by search_knowledge).",
        annotations=READ_ONLY,
    )
    async def get_article(
        article_id: Annotated[
            str,
            Field(pattern=r"^[a-z0-9-]{1,64}$", description="Article id, e.g. 'refund-policy'."),
        ],
    ) -> ArticleText:
        await _pause(latency_ms)
        article = kb.articles.get(article_id)
        if article is None:
            valid = ", ".join(sorted(kb.articles))
            raise ToolError(f"Article '{article_id}' does not exist. Valid article ids: {valid}.")
        return ArticleText(article_id=article.article_id, title=article.title, text=article.text)

    _add_prompts(server)
    return server


def _new_server(resource_auth: ResourceAuth | None) -> MCPServer:
    return KeelMCPServer(
        SERVER_NAME,
        title="Knowledge base",
        description="Support policies: refunds, returns, shipping, damaged items, warranty.",
        instructions="Search before deciding on policy questions; cite the article id you used.",
        log_level="WARNING",
        tool_scopes=TOOL_SCOPES,
        resource_auth=resource_auth,
    )


def _add_prompts(server: MCPServer) -> None:
    """``answer_from_policy``: answer a question from the articles, citing the one used."""

    @server.prompt(
        name="answer_from_policy",
        title="Answer from policy",
        description="Answer a customer's question from the support-policy articles, citing"
        " the article id used.",
    )
    def answer_from_policy(question: str) -> str:
        return (
            f"Question: {question}\n"
            "Call search_knowledge with the question's key words, read the best match with"
            " get_article, and answer from that article only. Cite its article id. If no"
            " article covers the question, say so instead of guessing."
        )
