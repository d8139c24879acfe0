"""The facade: routing chat messages, streaming turns, paper lookup errors, follow-ups."""

from __future__ import annotations

from collections.abc import Generator, Sequence

import pytest

from assistant.conversations import ChatTurn
from assistant.errors import AmbiguousPaper, LLMError, PaperNotFound
from assistant.llm import Completion, FakeLLM
from assistant.outcomes import Outcome, Reason, Shape
from assistant.schema import Answer, Comparison, Message, Summary
from assistant.service import Clarification, PaperAssistant
from assistant.streaming import Streamed


def make_assistant(sample_store, *replies: str | Exception) -> tuple[PaperAssistant, FakeLLM]:
    backend = FakeLLM(*replies)
    return PaperAssistant(sample_store.settings, store=sample_store, backend=backend), backend


GROUNDED = "aTLAS linearly combines parameter blocks with different learned coefficients [1]."


# --- routing ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "message",
    [
        "How does aTLAS differ from task arithmetic in the tangent space?",
        "ZIP-FIT vs Bonito",
        "compare IC-LoRA and ICM-LoRA",
    ],
)
def test_comparison_questions_are_routed_to_compare(sample_store, message: str) -> None:
    assistant, backend = make_assistant(sample_store)
    turn = assistant.respond(message)
    assert turn.result.kind == "comparison"
    assert isinstance(turn.result.result, Comparison) and len(turn.result.result.papers) == 2
    # One call per paper (every aspect at once), then the narrative.
    assert len(backend.history) == 3
    assert "say how these papers differ" in backend.last_messages[-1].content
    assert turn.result.text.startswith("| Aspect |")
    assert [c.n for c in turn.result.citations] == [1, 2]
    assert [s.paper_id for s in turn.result.sources] == [p.paper_id for p in turn.result.result.papers]


@pytest.mark.parametrize(
    ("message", "title"),
    [
        ("Summarize ZIP-FIT", "ZIP-FIT"),
        ("What is Rep-MTL about?", "Rep-MTL"),
        ("Give me a one-paragraph summary of the BIG-bench paper", "Beyond the Imitation Game"),
        ("Can you give me a short overview of ZIP-FIT?", "ZIP-FIT"),
        ("Rep-MTL in a nutshell, please", "Rep-MTL"),
        ("Sum up ZIP-FIT for me", "ZIP-FIT"),
    ],
)
def test_summary_requests_are_routed_to_summarize(sample_store, message: str, title: str) -> None:
    assistant, _backend = make_assistant(sample_store, "Too short.")
    turn = assistant.respond(message)
    assert turn.result.kind == "summary"
    assert isinstance(turn.result.result, Summary) and turn.result.result.title.startswith(title)
    assert turn.result.text == turn.result.result.summary
    assert [s.n for s in turn.result.sources] == [1] and turn.result.papers[0].title.startswith(title)


def test_other_questions_are_answered_with_citations(sample_store) -> None:
    assistant, _ = make_assistant(sample_store, GROUNDED)
    turn = assistant.respond("How does aTLAS combine task vectors?")
    pieces = list(turn)
    assert "".join(pieces) == GROUNDED
    assert turn.result.kind == "answer" and isinstance(turn.result.result, Answer)
    assert turn.result.text == GROUNDED and turn.result.citations[0].n == 1
    assert turn.result.model == "fake/echo" and turn.result.unsupported == []


def test_off_topic_is_a_refusal_turn(sample_store) -> None:
    assistant, backend = make_assistant(sample_store)
    turn = assistant.respond("federated learning with differential privacy")
    assert turn.result.kind == "refusal" and backend.history == []
    assert "does not cover" in turn.result.text


def test_ambiguous_name_gets_a_clarifying_question(sample_store) -> None:
    assistant, backend = make_assistant(sample_store)
    turn = assistant.respond("What does LoRA do?")
    assert turn.result.kind == "clarification" and backend.history == []
    assert isinstance(turn.result.result, Clarification)
    titles = [c.title for c in turn.result.result.candidates]
    assert {"In-Context LoRA for Diffusion Transformers", "In-Context Meta LoRA Generation"} <= set(titles)
    for n, title in enumerate(titles, start=1):
        assert f"{n}. {title}" in turn.result.text


def test_unknown_paper_in_a_summary_request_is_said_plainly(sample_store) -> None:
    assistant, backend = make_assistant(sample_store)
    turn = assistant.respond("Summarize FooBarNet")
    assert turn.result.kind == "clarification" and backend.history == []
    assert "No paper in the collection is called “FooBarNet”" in turn.result.text


def test_empty_message_is_a_friendly_value_error(sample_store) -> None:
    assistant, _ = make_assistant(sample_store)
    with pytest.raises(ValueError, match="The message is empty"):
        assistant.respond("  \n ")


def test_a_100k_character_message_is_cut_with_a_notice(sample_store) -> None:
    assistant, backend = make_assistant(sample_store, GROUNDED)
    turn = assistant.respond("How does aTLAS combine task vectors? " + "x" * 100_000)
    assert turn.result.kind == "answer"
    assert any("was cut" in notice for notice in turn.result.notices)
    assert backend.count_tokens(backend.last_messages[-1].content) < backend.context_window()


# --- failures ---------------------------------------------------------------------------
class BrokenMidStream(FakeLLM):
    def generate(self, messages: Sequence[Message], **options: object) -> Streamed[Completion]:
        self.history.append(list(messages))

        def pieces() -> Generator[str, None, Completion]:
            yield "aTLAS combines "
            raise LLMError("connection to the model was lost: check that Ollama is running")

        return Streamed(pieces())


def test_model_failure_surfaces_as_llm_error_with_the_partial_text(sample_store) -> None:
    assistant = PaperAssistant(sample_store.settings, store=sample_store, backend=BrokenMidStream())
    turn = assistant.respond("How does aTLAS combine task vectors?")
    with pytest.raises(LLMError, match="check that Ollama is running"):
        for _ in turn:
            pass
    assert turn.partial_text == "aTLAS combines "


def test_model_unavailable_before_streaming_surfaces_as_llm_error(sample_store) -> None:
    assistant, _ = make_assistant(sample_store, LLMError("OPENAI_API_KEY is not set: export it or pick another model"))
    with pytest.raises(LLMError, match="OPENAI_API_KEY is not set"):
        assistant.answer("How does aTLAS combine task vectors?")


# --- lookups ------------------------------------------------------------------------------
def test_compare_by_names_resolves_or_explains(sample_store) -> None:
    assistant, _ = make_assistant(sample_store)
    comparison = assistant.compare(["ZIP-FIT", "Bonito"])
    assert [p.title.split(":")[0] for p in comparison.papers] == [
        "ZIP-FIT",
        "Learning to Generate Instruction Tuning Datasets for Zero-Shot Task Adaptation",
    ]
    with pytest.raises(PaperNotFound, match="NoSuchPaperXYZ"):
        assistant.compare(["ZIP-FIT", "NoSuchPaperXYZ"])
    with pytest.raises(AmbiguousPaper) as ambiguous:
        assistant.compare(["ZIP-FIT", "LoRA"])
    assert len(ambiguous.value.candidates) >= 2 and "In-Context LoRA for Diffusion Transformers" in str(ambiguous.value)
    with pytest.raises(ValueError, match="2 to 4 papers"):
        assistant.compare(["ZIP-FIT"])


def test_paper_lookup_by_id_title_fragment_and_short_name(sample_store) -> None:
    assistant, _ = make_assistant(sample_store)
    zip_fit = assistant.paper("ZIP-FIT")
    assert assistant.paper(zip_fit.paper_id) == zip_fit
    assert assistant.paper("Embedding-Free Data Selection via Compression") == zip_fit
    with pytest.raises(PaperNotFound) as missing:
        assistant.paper("a paper on protein folding with AlphaFold")
    assert missing.value.suggestions  # the nearest papers, to pick from


def test_summarize_by_name(sample_store) -> None:
    assistant, backend = make_assistant(sample_store, "Too short.")
    summary = assistant.summarize("DTRN")
    assert summary.title.startswith("Deep Task-specific Bottom Representation Network")
    assert assistant.summarize("DTRN").cached and len(backend.history) == 1


def test_papers_and_search(sample_store) -> None:
    assistant, _ = make_assistant(sample_store)
    assert len(assistant.papers()) == 46
    assert assistant.search("compression-based data selection", 3)[0].paper.title.startswith("ZIP-FIT")
    assert next(p.title for p in assistant.resolve("compare ZIP-FIT and MUSCLE").matched).startswith("ZIP-FIT")


# --- conversations ------------------------------------------------------------------------
def test_follow_ups_use_the_previous_turn(sample_store) -> None:
    assistant, backend = make_assistant(sample_store)
    first = assistant.respond("compare ZIP-FIT and Bonito")
    list(first)
    history = [ChatTurn(role="user", content="compare ZIP-FIT and Bonito"), first.result.to_chat_turn()]
    assert [p.paper_id for p in history[1].papers] == [p.paper_id for p in first.result.result.papers]

    backend.enqueue("Too short.")
    follow_up = assistant.respond("summarize the second one", history)
    assert follow_up.result.kind == "summary"
    assert follow_up.result.result.paper_id == first.result.result.papers[1].paper_id

    again = assistant.respond("how do they differ?", history)
    assert again.result.kind == "comparison"
    assert [p.paper_id for p in again.result.result.papers] == [p.paper_id for p in first.result.result.papers]


def test_chat_turn_round_trip_keeps_what_export_and_follow_ups_need(sample_store) -> None:
    assistant, _ = make_assistant(sample_store, GROUNDED)
    turn = assistant.respond("How does aTLAS combine task vectors?")
    chat_turn = turn.result.to_chat_turn()
    assert chat_turn.role == "assistant" and chat_turn.kind == "answer"
    assert chat_turn.content == GROUNDED
    assert chat_turn.sources == turn.result.result.sources
    assert chat_turn.result["citations"][0]["n"] == 1
    assert [p.paper_id for p in chat_turn.papers] == [turn.result.result.citations[0].paper_id]
    assert [p.paper_id for p in assistant.papers_in_reach([chat_turn])] == [turn.result.result.citations[0].paper_id]


# --- one plan per message, outcomes as codes ------------------------------------------------------------------------
def test_a_question_about_a_figure_of_a_paper_is_answered_not_summarized(sample_store) -> None:
    # "overview" modifies "figure" here, and the figure is a part of aTLAS, not aTLAS.
    assistant, _backend = make_assistant(sample_store, GROUNDED)
    turn = assistant.respond("What is the overview figure in aTLAS about?")
    assert turn.result.kind == "answer" and isinstance(turn.result.result, Answer)


def test_the_plan_reads_the_shape_once_from_the_papers_named(sample_store) -> None:
    assistant, _backend = make_assistant(sample_store)
    assert assistant.plan("Which one of these papers uses LoRA?").shape is Shape.ONE_PAPER
    named = assistant.plan("What model sizes does ZIP-FIT test?")
    assert named.shape is Shape.EXPLANATION and [p.title.split(":")[0] for p in named.named] == ["ZIP-FIT"]


def test_every_reply_carries_its_outcome_and_reason(sample_store) -> None:
    assistant, _backend = make_assistant(sample_store, GROUNDED)
    answer = assistant.respond("How does aTLAS combine task vectors?").result
    assert (answer.outcome, answer.reason) == (Outcome.ANSWER, Reason.GROUNDED)
    declined = assistant.respond("federated learning with differential privacy").result
    assert (declined.outcome, declined.reason) == (Outcome.DECLINE, Reason.UNCOVERED_WORD)
    compared = assistant.respond("ZIP-FIT vs Bonito").result
    assert (compared.outcome, compared.reason) == (Outcome.ANSWER, Reason.COMPARED)
