"""One plan per message: what is asked, about which papers, decided once at the facade.

A chat message is read once, by :meth:`assistant.service.PaperAssistant.respond`, into a
:class:`QueryPlan`: its route (answer, comparison, summary, a question back), the shape of its
answer (one paper, several papers, a figure, an explanation), the papers it names, the papers a
follow-up refers to, the words that carry it and no abstract has, and any cut of the message.
The features read the plan and never parse the message again.

The route and shape come from a :class:`Planner`. :class:`RulesPlanner` holds every pattern
that reads a question's intent, in this one place; :class:`ModelPlanner` asks the model in one
short call held to a JSON schema, and falls back to the rules when its reply is not a valid
plan. The rules plan for fake models and by default: the model planner's accuracy and cost are
measured by ``benchmarks/planner.py`` (README, "Evaluation") and it is chosen with
``ASSISTANT_PLANNER=model``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.budget import fit_question
from assistant.conversations import ChatTurn
from assistant.coverage import uncovered_words
from assistant.dates import find_days
from assistant.errors import InvalidInput
from assistant.followups import history_turns, referenced_papers
from assistant.llm import LLMBackend
from assistant.outcomes import Route, Shape
from assistant.prompts import Prompt
from assistant.resolve import AmbiguousMention, Resolution, resolve_papers
from assistant.retrieval import Retriever
from assistant.schema import DateRange, Message, Paper, Usage
from assistant.text import is_name_shaped, names_in, tokenize

PLAN_MAX_TOKENS = 24
"""The planner's reply is two short words in JSON: ``{"route":"answer","shape":"one_paper"}`` is 15 tokens."""


class Intent(BaseModel):
    """What a planner decides: the route and the shape of the answer."""

    model_config = ConfigDict(frozen=True)

    route: Literal[Route.ANSWER, Route.COMPARISON, Route.SUMMARY]
    shape: Shape


class QueryPlan(BaseModel):
    """Everything decided about one message before any feature runs."""

    message: str = Field(description="The message as the features read it (cut to the model's context if needed)")
    route: Route
    shape: Shape
    named: list[Paper] = Field(default_factory=list, description="Papers the message names, in order of mention")
    ambiguous: list[AmbiguousMention] = Field(default_factory=list, description="Names that fit several papers")
    unknown: list[str] = Field(default_factory=list, description="Paper-like names that fit none")
    referents: list[Paper] = Field(default_factory=list, description="Papers a follow-up points at")
    previous_question: str = Field(default="", description="The last user question, when this is a follow-up")
    follow_up: bool = False
    uncovered: list[str] = Field(default_factory=list, description="Words that carry the question and no abstract has")
    notices: list[str] = Field(default_factory=list, description="What the reader should know: a cut message")
    days: DateRange | None = Field(default=None, description="The days a dated question asks about")
    planner: str = Field(default="rules", description="Which planner decided the route and shape")
    subjects: list[Paper] = Field(default_factory=list, description="The papers a comparison or summary is of")

    @property
    def papers(self) -> list[Paper]:
        """The papers an answer is about, each once: a follow-up's referents, then the named ones."""
        return list({paper.paper_id: paper for paper in [*self.referents, *self.named]}.values())

    @property
    def papers_after_named(self) -> list[Paper]:
        """The named papers, then a follow-up's referents, each once."""
        return list({paper.paper_id: paper for paper in [*self.named, *self.referents]}.values())


class Planner(Protocol):
    """Decides a message's route and shape; ``named`` are the papers the message names."""

    name: str

    def intent(self, message: str, named: Sequence[Paper]) -> tuple[Intent, Usage]: ...


# --- the rules: every pattern that reads a question's intent ------------------------------------------
_COMPARISON = re.compile(
    r"\bcompar(?:e|es|ed|ing|ison)\b|\bvs\.?(?=\s)|\bversus\b|\bdiffer(?:s|ent|ently|ence|ences)?\b|\bcontrast\b"
    r"|\bsimilarit(?:y|ies)\b|\bin common\b",
    re.IGNORECASE,
)
_SUMMARY_VERB = re.compile(r"\bsummar(?:ise|ize|ised|ized|ising|izing)\b|\bsum\s+up\b|\brecap\b", re.IGNORECASE)
# A summary noun heads the request ("an overview of X", "X in a nutshell?"); followed by another noun
# it is that noun's modifier ("the overview figure"), and the question is about the figure.
_SUMMARY_NOUN = re.compile(
    r"\b(?:summary|summaries|tl;?dr|gist|overview|nutshell|recap)\b(?=\s*(?:$|[?.!,;:)]|of\b|on\b|for\b|please\b))",
    re.IGNORECASE,
)
_WHAT_ABOUT = re.compile(r"\bwhat\s+(?:is|'s)\s+(.{2,120}?)\s+about\b", re.IGNORECASE)
_PAPER_NOUN = (
    r"(?:paper|work|method|approach|technique|study|article|model|system|framework|agent|benchmark|dataset|algorithm)"
)
_HEAD_BREAK = re.compile(r"\s+(?:in|of|on|for|from|by|with|about)\s+", re.IGNORECASE)
_ONE_OF = re.compile(r"\b(?:which|what)\s+one\b|\bwhich\s+of\b", re.IGNORECASE)
_ASKS_FOR_PAPERS = re.compile(
    # "which paper trains models ..." asks for one paper: the words between may not name one
    rf"\b(?:which|what|any|list|name|find|are there)\s+(?:(?!{_PAPER_NOUN}\b)[\w'-]+\s+){{0,3}}?"
    r"(?:papers|works|methods|approaches|studies|articles|techniques|models)\b|\bpapers\s+(?:that|which|about|on)\b",
    re.IGNORECASE,
)
_AUXILIARY = r"(?:does|do|did|is|are|was|were|can|could|has|have)"
_ASKS_FOR_ONE_PAPER = re.compile(
    # "what accuracy does a model reach" asks for a figure: a verb between "what" and the noun ends the phrase
    rf"\b(?:which|what)\s+(?:(?!{_AUXILIARY}\b)[\w'-]+\s+){{0,3}}?{_PAPER_NOUN}\b(?!s)"
    r"|\bis there (?:a |any )?(?:paper|work|study|method)\b(?!s)",
    re.IGNORECASE,
)
_ASKS_FOR_A_QUANTITY = re.compile(
    r"\bhow (?:much|many|large|big|small|fast|often|long|far|well)\b|\bwhat (?:accuracy|score|rate|size|speed"
    r"|percentage|fraction|share|number|amount|improvement|gain|proportion)\b|\bby (?:how|what)\b|\bwhich (?:accuracy|score)\b"
    r"|\b(?:percent|percentage|proportion|ratio|speed-?up)\b",
    re.IGNORECASE,
)


def _about_the_paper(message: str) -> bool:
    """ "What is X about?" asks for a summary when X is the paper: a name, or a phrase whose head is a
    paper noun ("the strawberry letter-counting paper"); not a part of it ("the overview figure in aTLAS")."""
    found = _WHAT_ABOUT.search(message)
    if found is None:
        return False
    subject = found.group(1).strip().strip("\"'“”")
    if not re.match(r"(?:the|a|an|this|that)\s", subject, re.IGNORECASE):
        return True
    head = _HEAD_BREAK.split(subject, maxsplit=1)[0].split()[-1]
    return bool(re.fullmatch(_PAPER_NOUN + "s?", head, re.IGNORECASE)) or is_name_shaped(head)


def asks_for_comparison(message: str) -> bool:
    return bool(_COMPARISON.search(message))


def asks_for_summary(message: str) -> bool:
    """ "Summarize X", "an overview of X", "X in a nutshell", "what is X about" (X the paper)."""
    return bool(_SUMMARY_VERB.search(message) or _SUMMARY_NOUN.search(message)) or _about_the_paper(message)


def answer_shape(message: str, named: Sequence[Paper] = ()) -> Shape:
    """One paper, several, a figure or an explanation.

    "Which one of these papers ...?" asks for one. A question that names its one paper ("What
    model sizes does ZIP-FIT test?") does not ask which paper: it asks about that one.
    """
    if _ONE_OF.search(message):
        return Shape.ONE_PAPER if len(named) != 1 else Shape.EXPLANATION
    if _ASKS_FOR_PAPERS.search(message):
        return Shape.PAPERS
    if _ASKS_FOR_ONE_PAPER.search(message) and len(named) != 1:
        return Shape.ONE_PAPER
    if _ASKS_FOR_A_QUANTITY.search(message):
        return Shape.FIGURE
    return Shape.EXPLANATION


class RulesPlanner:
    """The question's wording, read by the patterns above: free, and the fallback of every other planner."""

    name = "rules"

    def intent(self, message: str, named: Sequence[Paper]) -> tuple[Intent, Usage]:
        if asks_for_comparison(message):
            route = Route.COMPARISON
        elif asks_for_summary(message):
            route = Route.SUMMARY
        else:
            route = Route.ANSWER
        return Intent(route=route, shape=answer_shape(message, named)), Usage()


PLAN_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "route": {"type": "string", "enum": [Route.ANSWER.value, Route.COMPARISON.value, Route.SUMMARY.value]},
        "shape": {"type": "string", "enum": [shape.value for shape in Shape]},
    },
    "required": ["route", "shape"],
    "additionalProperties": False,
}


class ModelPlanner:
    """The model decides, in one short call held to :data:`PLAN_SCHEMA`; the rules when its reply is no plan."""

    name = "model"

    def __init__(self, backend: LLMBackend, prompt: Prompt) -> None:
        self.backend = backend
        self.prompt = prompt
        self.rules = RulesPlanner()

    def intent(self, message: str, named: Sequence[Paper]) -> tuple[Intent, Usage]:
        papers = "\n".join(f"- {paper.title}" for paper in named) or "(none)"
        completion = self.backend.generate(
            self.prompt.render(message=message, papers=papers),
            max_tokens=PLAN_MAX_TOKENS,
            temperature=0.0,
            json_schema=PLAN_SCHEMA,
        ).result
        try:
            return Intent.model_validate(json.loads(completion.text)), completion.usage
        except (ValueError, ValidationError):
            intent, _ = self.rules.intent(message, named)
            return intent, completion.usage


def routed_by_papers(plan: QueryPlan, compared: tuple[int, int]) -> QueryPlan:
    """The plan's route once the papers are known: a name that fits several papers is asked back; a
    comparison or a summary without the papers it needs is answered as a question, or asked back
    when the name it gives fits no paper. ``compared``: how many papers a comparison takes."""
    if plan.ambiguous:
        return plan.model_copy(update={"route": Route.CLARIFICATION})
    if plan.route in (Route.COMPARISON, Route.SUMMARY):
        # "Compare them", "how does it differ from aTLAS?", "summarize the second one".
        fewest, most = compared if plan.route is Route.COMPARISON else (1, 1)
        subjects = plan.named if len(plan.named) >= fewest else plan.papers_after_named
        if not subjects and plan.unknown:
            return plan.model_copy(update={"route": Route.CLARIFICATION})
        if fewest <= len(subjects) <= most:
            return plan.model_copy(update={"subjects": subjects})
        return plan.model_copy(update={"route": Route.ANSWER})
    return plan


def within_days(resolution: Resolution, days: DateRange) -> Resolution:
    """A dated question's names read among the papers of its days: a name that fits several papers
    of the whole collection but one of those days names that one, and fits none of them it is only
    words of the topic ("KV", "Gaussian" over 10,000 papers); papers it names plainly stay, so the
    answer can say they are listed on other days."""
    matched = list(resolution.matched)
    ambiguous = []
    for mention in resolution.ambiguous:
        in_range = [paper for paper in mention.candidates if days.contains(paper.day)]
        if len(in_range) == 1:
            matched += [paper for paper in in_range if paper not in matched]
        elif in_range:
            ambiguous.append(mention.model_copy(update={"candidates": in_range}))
    return resolution.model_copy(update={"matched": matched, "ambiguous": ambiguous})


def plan_message(
    message: str,
    history: Sequence[ChatTurn | Message],
    *,
    planner: Planner,
    backend: LLMBackend,
    retriever: Retriever,
    catalog: Sequence[Paper],
    papers_in_reach: Sequence[Paper],
    compared: tuple[int, int],
    days: DateRange | None = None,
) -> QueryPlan:
    """Read ``message`` once: cut it to the model's context, resolve the papers it names and those a
    follow-up points at, decide its route and shape, and find the words no abstract has.

    ``compared`` is how many papers a comparison takes, at least and at most: a comparison or a
    summary without the papers it needs is answered as a question, or asked back when the name
    it gives fits no paper.

    ``days`` is a range chosen beside the message; a date phrase in the message ("last week",
    read from the newest day the collection holds, :mod:`assistant.dates`) wins over it and is
    taken out of the question the features read ("What's new?" leaves "Which papers?").
    """
    if not message.strip():
        raise InvalidInput(
            "The message is empty: ask something about the papers, e.g. “Which papers are about code generation?”"
        )
    message, cut_notice = fit_question(message.strip(), backend)
    notices = [cut_notice] if cut_notice else []
    newest = retriever.newest_day()
    dated = find_days(message, newest) if newest is not None else None
    if dated is not None:
        days, message = dated.days, dated.message or "Which papers?"
        notices.append(f"{dated.reading}.")
    resolution = resolve_papers(message, catalog)
    if days is not None:
        resolution = within_days(resolution, days)
    follow_up = referenced_papers(message, history_turns(history), papers_in_reach, retriever.store.get_papers)
    intent, _ = planner.intent(message, resolution.matched)
    plan = QueryPlan(
        message=message,
        route=intent.route,
        shape=intent.shape,
        named=list(resolution.matched),
        ambiguous=list(resolution.ambiguous),
        unknown=list(resolution.unknown),
        referents=list(follow_up.papers) if follow_up else [],
        previous_question=follow_up.previous_question if follow_up else "",
        follow_up=follow_up is not None,
        notices=notices,
        days=days,
        planner=planner.name,
    )
    plan = routed_by_papers(plan, compared)
    # Found whatever the route: ``PaperAssistant.answer`` answers any message as a question.
    uncovered = uncovered_words(message, retriever.vocabulary(days), retriever.store.embedder)
    if plan.papers:
        # Named papers are always asked about; of them, a name no abstract has is still said to be
        # missing ("What success rate does Synapse achieve on WebArena?"), a plain word is how to
        # answer ("Explain aTLAS to a zoologist").
        names = names_in(message)
        uncovered = [word for word in uncovered if any(token.unit in names for token in tokenize(word))]
    return plan.model_copy(update={"uncovered": uncovered})
