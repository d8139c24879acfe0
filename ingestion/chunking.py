"""Cutting an abstract into token-bounded, sentence-aligned chunks."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import tiktoken

from assistant.schema import Chunk, Paper, chunk_id_of
from assistant.text import sentence_spans, strip_span
from assistant.tokens import encoding

# Any single code point is at most 4 UTF-8 bytes, so at most 4 tokens: with 8, every piece can progress.
MIN_CHUNK_TOKENS = 8


def chunk_paper(paper: Paper, chunk_tokens: int = 200, overlap_tokens: int = 40) -> list[Chunk]:
    """Cut ``paper.abstract`` into chunks of whole sentences, each at most ``chunk_tokens`` tokens.

    Chunk ``n`` has the id ``f"{paper_id}:{n}"``, carries the title, and its ``token_count`` is the
    exact cl100k_base count of its text (``assistant.tokens.count_tokens``). See :func:`chunk_spans`.
    """
    text = paper.abstract
    return [
        Chunk(
            chunk_id=chunk_id_of(paper.paper_id, index),
            paper_id=paper.paper_id,
            index=index,
            text=text[start:end],
            title=paper.title,
            token_count=tokens,
        )
        for index, (start, end, tokens) in enumerate(chunk_spans(text, chunk_tokens, overlap_tokens))
    ]


def chunk_spans(text: str, chunk_tokens: int = 200, overlap_tokens: int = 40) -> list[tuple[int, int, int]]:
    """``(start, end, tokens)`` of each chunk of ``text``: where it sits in the text, and its token count.

    Chunks are packed with whole sentences up to ``chunk_tokens``; consecutive chunks share the
    trailing sentences of the earlier one, up to ``overlap_tokens``. A sentence longer than
    ``chunk_tokens`` is cut at token boundaries (at a word start when one is near).
    """
    if chunk_tokens < MIN_CHUNK_TOKENS:
        raise ValueError(f"chunk_tokens must be at least {MIN_CHUNK_TOKENS}, got {chunk_tokens}")
    if not 0 <= overlap_tokens < chunk_tokens:
        raise ValueError(f"overlap_tokens must be between 0 and chunk_tokens - 1, got {overlap_tokens}")
    start, end = strip_span(text, 0, len(text))
    if start >= end:
        return []
    counter = _Counter(text)
    units = _units(text, start, counter, chunk_tokens)
    return _pack(text, units, counter, chunk_tokens, overlap_tokens)


@dataclass(frozen=True, slots=True)
class _Unit:
    """A sentence, or a piece of one too long for a chunk: the smallest thing a chunk holds."""

    start: int
    end: int
    # Its tokens together with the whitespace before it: what it adds to a chunk that it does not start.
    tokens: int
    # Followed by a space or the end of the text. Token boundaries there are the same in the whole text
    # and in any chunk, so a chunk of such units counts as its first unit alone plus the others' tokens.
    clean_end: bool


class _Counter:
    """Exact token counts of spans of one text, memoised: packing asks for some spans twice."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._encode = encoding().encode_ordinary
        self._cache: dict[tuple[int, int], int] = {}

    def count(self, start: int, end: int) -> int:
        key = (start, end)
        if key not in self._cache:
            self._cache[key] = len(self._encode(self._text[start:end]))
        return self._cache[key]


def _units(text: str, base: int, counter: _Counter, limit: int) -> list[_Unit]:
    """Sentences with their tokens in context (each encoded with the whitespace before it); long ones split."""
    units: list[_Unit] = []
    previous_end = base
    for start, end in sentence_spans(text):
        tokens = counter.count(previous_end, end)
        if tokens > limit and counter.count(start, end) > limit:
            units.extend(_split_long_sentence(text, start, end, counter, limit))
        else:
            units.append(_Unit(start, end, tokens, clean_end=end == len(text) or text[end] == " "))
        previous_end = end
    return units


def _split_long_sentence(text: str, start: int, end: int, counter: _Counter, limit: int) -> list[_Unit]:
    enc = encoding()
    tokens = enc.encode_ordinary(text[start:end])
    _, offsets = enc.decode_with_offsets(tokens)
    # cuts[i]: where token i starts in ``text``; a token that starts inside a character maps to that character.
    cuts = [start + offset for offset in offsets] + [end]
    pieces: list[_Unit] = []
    piece_start, first_token = start, 0
    while piece_start < end:
        last_token = min(first_token + limit, len(tokens))
        if last_token < len(tokens):
            last_token = _word_start_before(enc, tokens, first_token, last_token)
        piece_end = cuts[last_token]
        # Encoded on its own a piece can merge differently than inside the sentence: shrink until it fits.
        while piece_end > piece_start and counter.count(*strip_span(text, piece_start, piece_end)) > limit:
            last_token -= 1
            piece_end = cuts[last_token]
        if piece_end <= piece_start:
            piece_end = piece_start + 1  # one code point is at most 4 tokens, so this always fits
        unit_start, unit_end = strip_span(text, piece_start, piece_end)
        if unit_end > unit_start:
            pieces.append(_Unit(unit_start, unit_end, counter.count(unit_start, unit_end), clean_end=False))
        piece_start = piece_end
        first_token = bisect_left(cuts, piece_end)
    return pieces


def _word_start_before(enc: tiktoken.Encoding, tokens: list[int], first: int, last: int) -> int:
    """Move a cut back to the nearest token that starts a word, if one is within the last quarter."""
    floor = last - (last - first) // 4
    for index in range(last, floor, -1):
        if enc.decode_single_token_bytes(tokens[index])[:1].isspace():
            return index
    return last


def _pack(text: str, units: list[_Unit], counter: _Counter, limit: int, overlap: int) -> list[tuple[int, int, int]]:
    """Greedy packing of whole units by estimate, each chunk then checked by an exact count."""

    def estimate(first: int, last: int) -> int:
        return sum(unit.tokens for unit in units[first : last + 1])

    def exact(first: int, last: int) -> int:
        if all(unit.clean_end for unit in units[first : last + 1]):
            # Only the first unit tokenises differently without the text before it.
            return counter.count(units[first].start, units[first].end) + estimate(first + 1, last)
        return counter.count(units[first].start, units[last].end)

    spans: list[tuple[int, int, int]] = []
    first = next_new = 0
    while next_new < len(units):
        # Each chunk takes at least one new unit; overlap is given up until that unit fits.
        while first < next_new and estimate(first, next_new) > limit:
            first += 1
        last, total = next_new, estimate(first, next_new)
        while last + 1 < len(units) and total + units[last + 1].tokens <= limit:
            last += 1
            total += units[last].tokens
        tokens = exact(first, last)
        while tokens > limit and (last > next_new or first < next_new):
            if last > next_new:
                last -= 1
            else:
                first += 1
            tokens = exact(first, last)
        if tokens > limit:
            # A sentence whose estimate fit but whose exact count does not: split it and pack again.
            unit = units[next_new]
            units[next_new : next_new + 1] = _split_long_sentence(text, unit.start, unit.end, counter, limit)
            continue
        spans.append((units[first].start, units[last].end, tokens))
        chunk_first, next_new = first, last + 1
        first = next_new
        while first - 1 > chunk_first and estimate(first - 1, last) <= overlap:
            first -= 1
        while first < next_new and exact(first, last) > overlap:
            first += 1
    return spans
