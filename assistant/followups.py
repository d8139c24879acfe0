"""Follow-up questions: which papers "it", "the second one" or "what about ..." point at.

A conversation is a list of :class:`~assistant.conversations.ChatTurn`; a reply remembers the
papers it discussed in citation order. :func:`referenced_papers` reads a new question against
that history, and :func:`rewrite_follow_up` turns it into a question that stands on its own,
for retrieval and for the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.conversations import ChatTurn
from assistant.llm import LLMBackend
from assistant.prompts import Prompt
from assistant.schema import Message, Paper, PaperRef, Usage
from assistant.text import content_units, units_of

REWRITE_MAX_TOKENS = 60


def history_turns(history: Sequence[ChatTurn | Message]) -> list[ChatTurn]:
    """History as chat turns; plain messages (role, content) carry no papers."""
    turns: list[ChatTurn] = []
    for item in history:
        if isinstance(item, ChatTurn):
            turns.append(item)
        elif item.role in ("user", "assistant"):
            turns.append(ChatTurn(role="user" if item.role == "user" else "assistant", content=item.content))
    return turns


_ORDINAL_WORDS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2,
    "fourth": 3, "4th": 3, "fifth": 4, "5th": 4, "last": -1, "former": 0, "latter": -1,
}  # fmt: skip
_REFERENT = r"(?:one|paper|work|method|approach|model|study|article)"
_ORDINAL_REFERENCE = re.compile(
    rf"\bthe\s+(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last)\s+{_REFERENT}\b|\bthe\s+(former|latter)\b",
    re.IGNORECASE,
)
_NUMBERED_REFERENCE = re.compile(r"\[(\d+)\]|\b(?:source|paper|reference)\s+(?:number\s+|#)?(\d+)\b", re.IGNORECASE)
_DEMONSTRATIVE = re.compile(rf"\b(?:this|that|these|those|both|each)\s+(?:{_REFERENT}s?|of them)\b", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(?:it|its|they|them|their|theirs|both|either|neither)\b", re.IGNORECASE)
_ELLIPSIS_START = re.compile(r"^\s*(?:and|also|but|what about|how about|same for|how so)\b", re.IGNORECASE)
# Long questions that contain "it" usually say what "it" is themselves.
SHORT_QUESTION_WORDS = 12


@dataclass(frozen=True)
class FollowUp:
    """What a follow-up question refers to in the conversation."""

    papers: list[Paper]
    previous_question: str


def referenced_papers(
    question: str,
    history: Sequence[ChatTurn],
    papers_in_reach: Sequence[Paper],
    store_lookup: Callable[[list[str]], dict[str, Paper]],
) -> FollowUp | None:
    """The papers a follow-up points at, or None when ``question`` stands on its own.

    "The second one" is the second paper the last reply cited; "[2]" or "paper 2" is that
    reply's source 2; "it", "they", "what about ..." mean all papers of the last reply that
    discussed any (or, without such a reply, the papers in reach).
    """
    last_reply = next((turn for turn in reversed(history) if turn.role == "assistant" and turn.papers), None)
    previous_question = next((turn.content for turn in reversed(history) if turn.role == "user"), "")
    refs: list[PaperRef] = list(last_reply.papers) if last_reply else []
    in_reach = {paper.paper_id: paper for paper in papers_in_reach}

    ordinal = _ORDINAL_REFERENCE.search(question)
    numbered = _NUMBERED_REFERENCE.search(question)
    if ordinal and refs:
        index = _ORDINAL_WORDS[(ordinal.group(1) or ordinal.group(2)).lower()]
        chosen = [refs[index]] if -len(refs) <= index < len(refs) else refs
    elif numbered and last_reply and last_reply.sources:
        n = int(numbered.group(1) or numbered.group(2))
        chosen = [PaperRef(paper_id=s.paper_id, title=s.title) for s in last_reply.sources if s.n == n] or refs
    elif (
        _DEMONSTRATIVE.search(question)
        or _ELLIPSIS_START.search(question)
        or (_PRONOUN.search(question) and len(question.split()) <= SHORT_QUESTION_WORDS)
    ):
        chosen = refs
    else:
        return None
    if not chosen:
        if not papers_in_reach:
            return None
        return FollowUp(papers=list(papers_in_reach), previous_question=previous_question)
    missing = [ref.paper_id for ref in chosen if ref.paper_id not in in_reach]
    found = {**store_lookup(missing), **in_reach} if missing else in_reach
    papers = [found[ref.paper_id] for ref in chosen if ref.paper_id in found]
    return FollowUp(papers=papers, previous_question=previous_question) if papers else None


def _title_words(title: str) -> set[str]:
    return set(content_units(units_of(title)))


def _clean_rewrite(reply: str) -> str:
    line = next((line for line in reply.strip().splitlines() if line.strip()), "")
    line = re.sub(r"^\s*(?:standalone\s+)?(?:question|rewritten question)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip("\"'`").strip()


def rewrite_follow_up(question: str, follow_up: FollowUp, *, backend: LLMBackend, prompt: Prompt) -> tuple[str, Usage]:
    """A standalone version of ``question`` for retrieval and the answer prompt.

    The model's rewrite is kept only when it names one of the referenced papers (a tiny
    model often just repeats the question); otherwise their titles are appended, which
    is what retrieval needs to find them again.
    """
    titles = [paper.title for paper in follow_up.papers]
    messages = prompt.render(
        previous_question=" ".join(follow_up.previous_question.split())[:500] or "(none)",
        papers="\n".join(f"{i}. {' '.join(title.split())}" for i, title in enumerate(titles, start=1)),
        question=question,
    )
    completion = backend.generate(messages, max_tokens=REWRITE_MAX_TOKENS, temperature=0.0).result
    candidate = _clean_rewrite(completion.text)
    # It must bring in words of a referenced title that the follow-up itself did not have.
    added = set(units_of(candidate)) - set(units_of(question))
    names_a_paper = any(_title_words(title) & added for title in titles)
    if 3 <= len(candidate.split()) <= 60 and names_a_paper and candidate.casefold() != question.casefold():
        return candidate, completion.usage
    return f"{question} ({'; '.join(titles)})", completion.usage
