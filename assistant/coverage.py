"""Which words of a question the collection never uses, and which of those carry its meaning.

Retrieval always finds *something*: a question about video diffusion retrieves the image
diffusion papers. When a word that matters to the question appears in no abstract at all,
the reader should be told, so the answer is not taken for more than it is. The vocabulary
check is exact (the BM25 index knows every term of the collection); how much a word
matters is measured by how far the question's embedding moves when the word is left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from assistant.embeddings import EmbedFunction
from assistant.retrieval import Vocabulary, bm25_tokens, simple_tokens

_WORD = re.compile(r"[A-Za-z0-9][\w'-]*[A-Za-z0-9]|[A-Za-z0-9]")

SALIENCE_SHARE = 0.5
"""An absent word is reported when it moves the question at least half as much as its most important word."""

_KIN_PREFIX = 6
"""Stems sharing this many first letters and about the same length are one word to a reader
("compressor" and "compress", which the stemmer keeps apart)."""


def content_words(question: str) -> list[str]:
    """The question's words that carry a topic (question words and stopwords dropped), each once."""
    return [word for word in dict.fromkeys(_WORD.findall(question)) if bm25_tokens(word)]


def absent_words(question: str, vocabulary: Vocabulary) -> list[str]:
    """Content words none of whose parts the collection uses ("customer-service": neither part known)."""
    absent = []
    for word in content_words(question):
        tokens = bm25_tokens(word)
        parts = simple_tokens(tokens) or tokens
        if not any(_known(part, vocabulary) for part in parts):
            absent.append(word)
    return absent


def _known(term: str, vocabulary: Vocabulary) -> bool:
    if term in vocabulary:
        return True
    if len(term) < _KIN_PREFIX:
        return False
    return any(abs(len(known) - len(term)) <= 3 for known in vocabulary.words_starting(term[:_KIN_PREFIX]))


def salience(question: str, words: Sequence[str], embedder: EmbedFunction) -> dict[str, float]:
    """1 - cosine between the question and the question without each word: one embedder call."""
    if not words:
        return {}
    variants = [re.sub(rf"(?<![\w-]){re.escape(word)}(?![\w-])", " ", question) for word in words]
    vectors = np.asarray(embedder([question, *variants]), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return {word: max(0.0, float(1.0 - vectors[0] @ vectors[i + 1])) for i, word in enumerate(words)}


def uncovered_words(question: str, vocabulary: Vocabulary, embedder: EmbedFunction) -> list[str]:
    """Absent words that matter to the question, most important first; [] without an embedder call
    when every word is known."""
    absent = absent_words(question, vocabulary)
    if not absent:
        return []
    weights = salience(question, content_words(question), embedder)
    top = max(weights.values(), default=0.0)
    if top <= 0.0:
        return []
    kept = [word for word in absent if weights.get(word, 0.0) >= SALIENCE_SHARE * top]
    return sorted(kept, key=lambda word: -weights[word])


def quoted_list(words: Sequence[str], limit: int = 3) -> str:
    """“a”, “b” or “c”: the first ``limit`` words, quoted."""
    quoted = [f"“{word}”" for word in words[:limit]]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def uncovered_notice(words: Sequence[str]) -> str:
    return f"No abstract in the collection mentions {quoted_list(words)}, so this answer cannot speak to that part of the question."
