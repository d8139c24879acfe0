"""What a question is and what becomes of its reply: routes, shapes, verdicts, outcomes, and one table.

A message is planned once (:mod:`assistant.plan`): a **route** (which feature answers) and a
**shape** (what the answer is: one paper, several papers, a figure, an explanation). The
answer feature checks the model's reply and reaches a **verdict** (:class:`Reason`): grounded,
only titles, the question restated, ungrounded, declined, or far from every paper before any
model was asked. :data:`OUTCOMES` maps (shape, verdict) to the one **outcome** the user gets:
the answer, the answer under the paper's title, one line per paper, the abstracts' own
sentences, a decline with the nearest papers, or a question back.

The codes are a contract: ``ask --json``, the HTTP API's chat completion and ``eval --json``
carry ``outcome`` and ``reason``; values are only ever added, never renamed. Tests and the
evaluation assert these codes, never the prose shown beside them.

This module imports nothing of the package, so the records of :mod:`assistant.schema` can carry
its codes.
"""

from __future__ import annotations

from enum import StrEnum


class Route(StrEnum):
    """Which feature answers a message."""

    ANSWER = "answer"
    COMPARISON = "comparison"
    SUMMARY = "summary"
    CLARIFICATION = "clarification"
    """A name in the message fits several papers, or none: the reply is a question back."""


class Shape(StrEnum):
    """What the answer to a question is."""

    ONE_PAPER = "one_paper"
    """ "Which paper ...?", "Is there a method that ...?": one paper, named."""
    PAPERS = "papers"
    """ "Which papers ...?", "Any works on ...?": a list of papers, each with what it does."""
    FIGURE = "figure"
    """ "How much ...?", "What accuracy ...?": a quantity the abstracts state."""
    EXPLANATION = "explanation"
    """Anything else: what, how or why, told from the abstracts."""


class Outcome(StrEnum):
    """What the user gets."""

    ANSWER = "answer"
    """The model's checked text (or a comparison, a summary)."""
    ANSWER_UNDER_TITLE = "answer_under_title"
    """The paper's title leads, with the model's text or the abstract's best sentence."""
    ONE_LINE_PER_PAPER = "one_line_per_paper"
    """Each paper read, with its own most relevant sentence."""
    ABSTRACT_SENTENCES = "abstract_sentences"
    """The abstracts' own sentences that answer the question, each cited."""
    DECLINE = "decline"
    """The papers do not answer; the nearest ones are listed."""
    QUESTION_BACK = "question_back"
    """Which paper was meant?"""


class Reason(StrEnum):
    """Why a reply is what it is: the verdict on the question and on the model's reply."""

    GROUNDED = "grounded"
    """Most of the reply's claims are supported by the sources they cite."""
    TITLES_ONLY = "titles_only"
    """Every claim only names a paper."""
    RESTATED = "restated"
    """The reply's ungrounded claims mostly restate the question."""
    RESTATED_CLEAR_PAPER = "restated_clear_paper"
    """The reply restates the question, read from one paper that plainly is the one asked for."""
    RESTATED_UNCOVERED = "restated_uncovered"
    """The reply restates the question, and a word that carries the question is in no abstract."""
    UNGROUNDED = "ungrounded"
    """Most claims are not supported by the sources."""
    UNGROUNDED_UNCOVERED = "ungrounded_uncovered"
    """Ungrounded, and a word that carries the question is in no abstract."""
    NO_ANSWER = "no_answer"
    """The model wrote no claim at all."""
    MODEL_DECLINED = "model_declined"
    """The model's whole reply says the sources do not answer."""
    NO_CLOSE_PAPER = "no_close_paper"
    """Before any model: no paper is close enough to the question (``answer.min_relevance``)."""
    UNCOVERED_WORD = "uncovered_word"
    """Before any model: a word that carries the question is in no abstract and no paper comes close."""
    AMBIGUOUS_NAME = "ambiguous_name"
    """A name in the message fits several papers."""
    UNKNOWN_NAME = "unknown_name"
    """A comparison or summary names a paper the collection does not have."""
    COMPARED = "compared"
    """A comparison of the named papers."""
    SUMMARIZED = "summarized"
    """A summary the support check accepted."""
    SUMMARY_UNGROUNDED = "summary_ungrounded"
    """The model's summary was not grounded: the abstract's central sentences instead."""
    NO_PAPERS_IN_RANGE = "no_papers_in_range"
    """Before any model: the days asked hold no paper at all."""
    NOTHING_IN_RANGE = "nothing_in_range"
    """Before any model: the days asked hold papers, none on the question's topic."""
    LISTED_DAYS = "listed_days"
    """A dated question without a topic ("what's new?"): the days' papers, one line each."""


_DECLINES = {
    Reason.NO_PAPERS_IN_RANGE,
    Reason.NOTHING_IN_RANGE,
    Reason.MODEL_DECLINED,
    Reason.RESTATED_UNCOVERED,
    Reason.NO_CLOSE_PAPER,
    Reason.UNCOVERED_WORD,
    Reason.UNGROUNDED_UNCOVERED,
}
_FALLBACK = {Reason.UNGROUNDED, Reason.NO_ANSWER}


def _row(shape: Shape) -> dict[Reason, Outcome]:
    row = {reason: Outcome.DECLINE for reason in _DECLINES}
    row |= {reason: Outcome.ABSTRACT_SENTENCES for reason in _FALLBACK}
    row |= {
        Reason.GROUNDED: Outcome.ANSWER,
        Reason.TITLES_ONLY: Outcome.ABSTRACT_SENTENCES,
        Reason.RESTATED: Outcome.DECLINE,
        Reason.RESTATED_CLEAR_PAPER: Outcome.DECLINE,
        Reason.LISTED_DAYS: Outcome.ONE_LINE_PER_PAPER,
    }
    if shape is Shape.ONE_PAPER:
        # The answer is a paper: its title leads, whatever the model wrote about it.
        row |= {
            Reason.GROUNDED: Outcome.ANSWER_UNDER_TITLE,
            Reason.TITLES_ONLY: Outcome.ANSWER_UNDER_TITLE,
            Reason.RESTATED_CLEAR_PAPER: Outcome.ANSWER_UNDER_TITLE,
        }
    if shape is Shape.PAPERS:
        # Titles are the answer; a reply restating the question under each paper still says which papers.
        row |= {
            Reason.TITLES_ONLY: Outcome.ANSWER,
            Reason.RESTATED: Outcome.ONE_LINE_PER_PAPER,
            Reason.RESTATED_CLEAR_PAPER: Outcome.ONE_LINE_PER_PAPER,
            Reason.UNGROUNDED: Outcome.ONE_LINE_PER_PAPER,
            Reason.NO_ANSWER: Outcome.ONE_LINE_PER_PAPER,
        }
    return row


OUTCOMES: dict[tuple[Shape, Reason], Outcome] = {
    (shape, reason): outcome for shape in Shape for reason, outcome in _row(shape).items()
}
"""(shape, verdict) -> outcome, for every verdict the answer feature reaches."""


def outcome_for(shape: Shape, reason: Reason) -> Outcome:
    """The outcome of an answer to a question of ``shape`` whose reply got the verdict ``reason``."""
    return OUTCOMES[(shape, reason)]
