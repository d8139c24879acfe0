"""Evidence first: the few sentences of the few papers that bear on a question.

Small models summarise a passage they are given well, and choose badly among six sources
(on the dev set, Qwen2.5-1.5B given six whole chunks declined 12 of 27 answerable questions
and cited 0.54 of the gold papers; issue 10). So retrieval and the question pick the papers
and, in each, the sentences that matter, and the model writes from those: a prompt of a few
hundred tokens instead of 1,100, read several times faster on a CPU.

A sentence's relevance to a question is its embedding similarity plus a share for the
question's key terms it contains; a question that asks for a quantity ("how much", "what
accuracy", "by how many") also favours sentences that state numbers. Sentences that address a
reader or a model (:mod:`assistant.instructions`) are never evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.embeddings import EmbedFunction, embed_with_cache
from assistant.instructions import without_instructions
from assistant.schema import Paper
from assistant.text import key_stems, numbers_in, split_sentences

TERM_WEIGHT = 0.35
"""Share of a sentence's relevance that comes from the question's key terms it contains."""
NUMBER_BONUS = 0.15
"""Added to a sentence that states a quantity when the question asks for one."""
SENTENCES_PER_PAPER = 3
"""Sentences of the best paper given to the model; the others get one fewer."""


@dataclass(frozen=True)
class Evidence:
    """One paper's sentences that bear on the question, in the abstract's order, and how well they do."""

    paper: Paper
    sentences: tuple[str, ...]
    relevance: float
    """The best sentence's relevance: how well this paper answers the question at all."""
    best: int = 0
    """Which of ``sentences`` that best one is."""

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def relevance(question: str, sentences: Sequence[str], embedder: EmbedFunction, *, figures: bool = False) -> np.ndarray:
    """Each sentence's relevance to the question: cosine similarity, key terms, and stated numbers when
    ``figures`` (the answer is a figure)."""
    if not sentences:
        return np.zeros(0)
    vectors = embed_with_cache(embedder, [question], list(sentences))
    similarity = vectors[1:] @ vectors[0]
    wanted = key_stems(question)
    terms = np.asarray([len(wanted & key_stems(sentence)) / len(wanted) if wanted else 0.0 for sentence in sentences])
    score = (1 - TERM_WEIGHT) * similarity + TERM_WEIGHT * terms
    if figures:
        score += NUMBER_BONUS * np.asarray([bool(numbers_in(sentence)) for sentence in sentences])
    return score


def evidence_of(
    question: str, paper: Paper, embedder: EmbedFunction, *, sentences: int = SENTENCES_PER_PAPER, figures: bool = False
) -> Evidence:
    """The ``sentences`` most relevant sentences of ``paper``'s abstract, kept in their order."""
    candidates = split_sentences(" ".join(without_instructions(paper.abstract).split()))
    if not candidates:
        return Evidence(paper=paper, sentences=(), relevance=0.0)
    scores = relevance(question, candidates, embedder, figures=figures)
    top = int(np.argmax(scores))
    kept = sorted(int(i) for i in np.argsort(-scores, kind="stable")[:sentences])
    return Evidence(
        paper=paper,
        sentences=tuple(candidates[i] for i in kept),
        relevance=float(scores[top]),
        best=kept.index(top),
    )


def gather(
    question: str,
    papers: Sequence[Paper],
    embedder: EmbedFunction,
    *,
    sentences: int = SENTENCES_PER_PAPER,
    figures: bool = False,
) -> list[Evidence]:
    """Evidence from each paper, in the order given: the first paper gets ``sentences``, the others one fewer."""
    return [
        evidence_of(
            question, paper, embedder, sentences=sentences if i == 0 else max(1, sentences - 1), figures=figures
        )
        for i, paper in enumerate(papers)
    ]
