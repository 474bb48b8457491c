"""Steering a search: "more like these, less like those", by example ids and by words.

Excluded words: in any query text, a token starting with ``-`` (``kick -distorted``, or a
quoted phrase ``-"lo fi"``) is a word to move away from. A hyphen inside a word (``lo-fi``,
``hi-hat``) is no exclusion, nor is a negative number (``-6``) or a lone ``-``. Requests may
also list words to avoid (``avoid``); both end up in one :class:`TextQuery`.

Every steered query is one vector, Qdrant's ``average_vector`` recommend rule over the
positives (example ids, the text) and the negatives (example ids, the avoided words):
:class:`~timbre.store.examples.Examples`. So ``"kick -distorted"`` is exactly the recommend
query with the text ``kick`` and the avoided word ``distorted``, and every engine answers it
alike: the snapshot by that vector, Qdrant by its recommend query.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from timbre.errors import InvalidRequestError, NotFoundError
from timbre.search import routing
from timbre.search.fitting import FitQuery, pool_size, rank_hits
from timbre.store import Hit, SearchFilter
from timbre.store.examples import Examples

if TYPE_CHECKING:
    from timbre.search.service import SearchService

MAX_EXAMPLES = 64
"""Examples one query may hold: ids, the text and avoided words together."""
MAX_WORD_CHARS = 200
_OPEN_QUOTES = '"“'
_CLOSE_QUOTES = '"”'


@dataclass(frozen=True)
class TextQuery:
    """Query text split into what is wanted (``text``, may be empty) and what to avoid."""

    text: str
    avoid: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The parsed query as a result's ``query`` shows it."""
        return {"text": self.text, **({"avoid": list(self.avoid)} if self.avoid else {})}


def _tokens(raw: str) -> Iterator[tuple[bool, str, str]]:
    """``(excluded, phrase, as typed)`` per token: a word, or a quoted phrase (an unclosed
    quote runs to the end)."""
    i, n = 0, len(raw)
    while i < n:
        if raw[i].isspace():
            i += 1
            continue
        start = i
        following = raw[i + 1] if i + 1 < n else " "
        excluded = raw[i] == "-" and not (
            following.isspace() or following == "-" or following.isdigit()
        )
        j = i + 1 if excluded else i
        if raw[j] in _OPEN_QUOTES:
            end = next((k for k in range(j + 1, n) if raw[k] in _CLOSE_QUOTES), n)
            phrase, i = raw[j + 1 : end], end + 1
        else:
            end = j
            while end < n and not raw[end].isspace():
                end += 1
            phrase, i = raw[j:end], end
        yield excluded, " ".join(phrase.split()), raw[start:i]


def _word(value: str) -> str:
    word = " ".join(value.split())
    if not word:
        raise InvalidRequestError("avoid: a word to avoid is empty")
    if len(word) > MAX_WORD_CHARS:
        raise InvalidRequestError(f"avoid: a word to avoid is over {MAX_WORD_CHARS} characters")
    return word


def parse_text(raw: str, avoid: Sequence[str] = (), *, require_text: bool = True) -> TextQuery:
    """Split ``raw`` into wanted text and avoided words (with ``avoid`` added, duplicates
    dropped). Text without exclusions is kept exactly as given. ``require_text``: a query of
    exclusions only is refused (InvalidRequestError)."""
    tokens = list(_tokens(raw))
    excluded = [phrase for is_excluded, phrase, _ in tokens if is_excluded and phrase]
    if any(is_excluded for is_excluded, _, _ in tokens):
        text = " ".join(typed for is_excluded, _, typed in tokens if not is_excluded)
    else:
        text = raw if raw.strip() else ""
    folded: dict[str, str] = {}
    for given in (*excluded, *avoid):  # "Distorted" and "distorted" are one word to avoid
        word = _word(given)
        folded.setdefault(word.casefold(), word)
    query = TextQuery(text, tuple(folded.values()))
    if require_text and not query.text:
        if query.avoid:
            raise InvalidRequestError(
                "the query holds only words to avoid; say what to look for too, "
                "e.g. 'kick -distorted'"
            )
        raise InvalidRequestError("the query text is empty")
    return query


# -- query vectors ------------------------------------------------------------------------


def text_vector(service: SearchService, query: TextQuery) -> np.ndarray:
    """The query vector of one text (plain text through the service's batcher)."""
    if not query.avoid:
        return service.text_vector(query.text)
    return text_vectors(service, [query])[0]


def text_vectors(service: SearchService, queries: Sequence[TextQuery]) -> list[np.ndarray]:
    """The query vector of each text: its embedding, or the average-vector rule with its
    avoided words as negatives. Every phrase goes through the text cache, in one batch."""
    phrases = [p for q in queries for p in (q.text, *q.avoid)]
    embedded = iter(service.text_vectors(phrases))
    out = []
    for q in queries:
        text = next(embedded)
        avoided = [next(embedded) for _ in q.avoid]
        out.append(Examples.of([text], avoided).vector() if avoided else text)
    return out


# -- recommend ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Steering:
    """A recommend query: example ids to move towards and away from, optional text (whose
    ``-word`` tokens join ``avoid``) and words to avoid."""

    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    query: str | None = None
    avoid: tuple[str, ...] = ()


def check_steering(steering: Steering) -> tuple[list[str], list[str], TextQuery]:
    """The distinct positive and negative ids and the parsed text of a recommend query;
    InvalidRequestError for nothing to look for, an id on both sides or too many examples."""
    positive = list(dict.fromkeys(steering.positive))
    negative = list(dict.fromkeys(steering.negative))
    both = sorted(set(positive) & set(negative))
    if both:
        raise InvalidRequestError(f"ids both positive and negative: {', '.join(both)}")
    text = parse_text(steering.query or "", steering.avoid, require_text=False)
    if not positive and not text.text:
        if steering.query is not None:
            raise InvalidRequestError(
                "the query holds only words to avoid; give a positive id or a query that says "
                "what to look for too"
            )
        raise InvalidRequestError("give at least one positive id or a query")
    count = len(positive) + len(negative) + bool(text.text) + len(text.avoid)
    if count > MAX_EXAMPLES:
        raise InvalidRequestError(
            f"at most {MAX_EXAMPLES} examples (ids, the query and words to avoid together), "
            f"not {count}"
        )
    return positive, negative, text


def examples_of(service: SearchService, steering: Steering) -> tuple[Examples, dict[str, Any]]:
    """The examples of a recommend query and the query as a result shows it. Unknown ids:
    NotFoundError naming every one."""
    positive, negative, text = check_steering(steering)
    ids = positive + negative
    stored = service.library.stored_vectors(ids)
    unknown = [i for i in ids if i not in stored]
    if unknown:
        raise NotFoundError(f"no indexed items with the ids: {', '.join(unknown)}")
    phrases = ([text.text] if text.text else []) + list(text.avoid)
    embedded = service.text_vectors(phrases) if phrases else []
    wanted = embedded[:1] if text.text else []
    avoided = embedded[1:] if text.text else embedded
    examples = Examples.of(
        [stored[i] for i in positive] + wanted, [stored[i] for i in negative] + avoided
    )
    described = {
        "positive": positive,
        "negative": negative,
        "text": text.text or None,
        "avoid": list(text.avoid),
    }
    return examples, described


class Recommended(NamedTuple):
    """Hits of a recommend query, the engine that found them, how many samples it could
    return (None: not counted) and the query as a result shows it."""

    hits: list[Hit]
    engine: str
    total: int | None
    query: dict[str, Any]


def recommend(
    service: SearchService,
    steering: Steering,
    *,
    top_k: int,
    offset: int = 0,
    filter: SearchFilter | None = None,
    fit: FitQuery | None = None,
) -> Recommended:
    """Nearest samples to the examples' average vector, the example ids left out (so a page
    asks every engine for ``offset + top_k`` plus one per example, from the first); with a
    ``fit`` that reranks, ranked over a pool as every search is (:mod:`.fitting`)."""
    examples, described = examples_of(service, steering)
    exclude = set(described["positive"]) | set(described["negative"])
    reranks = fit is not None and fit.reranks
    wanted = pool_size(offset, top_k) if reranks else offset + top_k
    routed = routing.search(
        service.library.snapshots.current,
        service.library.store,
        service.routing,
        examples.vector(),
        top_k=wanted + len(exclude),
        offset=0,
        filter=filter,
        examples=examples,
    )
    kept = [h for h in routed.hits if h.id not in exclude]
    matching = routed.matching
    if matching is None:
        matching = service.library.matching(filter)
    total = None
    if matching is not None:
        # Unfiltered, every example is among the matches; filtered, those seen are.
        unfiltered = filter is None or filter.is_empty
        seen = len(exclude) if unfiltered else len(routed.hits) - len(kept)
        total = max(0, matching - seen)
    if fit is not None:
        described = {**described, "context": fit.describe()}
        if reranks:
            kept = rank_hits(kept, fit)
            total = len(kept) if fit.only_fitting else total
    return Recommended(kept[offset : offset + top_k], routed.engine, total, described)
