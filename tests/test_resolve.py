"""Name resolution against the sample collection: names, typos, ambiguity, unknown names, no false positives."""

from __future__ import annotations

import json
import re
import time

import pytest

from assistant.resolve import AliasIndex, Resolution, resolve_one, resolve_papers
from assistant.schema import Paper
from assistant.settings import SAMPLE_COLLECTION
from tests.conftest import DEV_SET


def sample_papers() -> list[Paper]:
    """The sample file's papers (title line, blank line, abstract) after its page header."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", SAMPLE_COLLECTION.read_text()) if block.strip()]
    blocks = blocks[blocks.index("Aug 19") + 1 :]
    return [
        Paper(paper_id=re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60], title=title, abstract=abstract)
        for title, abstract in zip(blocks[0::2], blocks[1::2], strict=True)
    ]


PAPERS = sample_papers()


def titled(prefix: str) -> Paper:
    (paper,) = [paper for paper in PAPERS if paper.title.startswith(prefix)]
    return paper


def titles(resolution: Resolution) -> list[str]:
    return [paper.title for paper in resolution.matched]


def test_the_sample_parses_into_46_papers() -> None:
    assert len(PAPERS) == 46


NAMES = {
    # short names before the title's colon
    "TRAD": "TRAD:",
    "MUSCLE": "MUSCLE:",
    "ZIP-FIT": "ZIP-FIT:",
    "Rep-MTL": "Rep-MTL:",
    "BT^2": "BT^2:",
    "USCD": "USCD:",
    "ToDRE": "ToDRE:",
    "A-STAR": "A-STAR:",
    "Synapse": "Synapse:",
    "AxFormer": "AxFormer:",
    "Flowformer": "Flowformer:",
    "TaskExpert": "TaskExpert:",
    "RealEra": "RealEra:",
    # names the abstract introduces
    "aTLAS": "Knowledge Composition using Task Vectors",
    "EREN": "Robust and Scalable Model Editing",
    "MULTI-LANE": "Less is more",
    "MoTE": "Mixture of Tunable Experts",
    "IC-LoRA": "In-Context LoRA for Diffusion",
    "ICM-LoRA": "In-Context Meta LoRA",
    "DTRN": "Deep Task-specific Bottom",
    "FTRI": "Mixture of Tunable Experts",
    "Bonito": "Learning to Generate Instruction Tuning",
    "BIG-bench": "Beyond the Imitation Game",
    "In-Context LoRA": "In-Context LoRA for Diffusion",
    # title words, whole or in part, and initialisms
    "task arithmetic in the tangent space": "Task Arithmetic in the Tangent Space",
    "Efficient Controllable Multi-Task Architectures": "Efficient Controllable Multi-Task",
    "Prototype-Sample Relation Distillation": "Prototype-Sample Relation",
    "Towards Replay-Free Continual Learning": "Prototype-Sample Relation",
    "PRD": "Prototype-Sample Relation",
    # case and typos
    "atlas": "Knowledge Composition using Task Vectors",
    "aTLAs": "Knowledge Composition using Task Vectors",
    "ZIPFIT": "ZIP-FIT:",
    "zip-fit": "ZIP-FIT:",
    "Rep MTL": "Rep-MTL:",
    "BT2": "BT^2:",
    "Prototype Sample Relation Distilation": "Prototype-Sample Relation",
    "Flowfromer": "Flowformer:",
    "TaskExpret": "TaskExpert:",
    "Synapes": "Synapse:",
}


@pytest.mark.parametrize(("name", "prefix"), NAMES.items())
def test_an_explicit_name_resolves_to_its_paper(name: str, prefix: str) -> None:
    resolution = resolve_one(name, PAPERS)
    assert titles(resolution) == [titled(prefix).title]
    assert resolution.ambiguous == [] and resolution.unknown == []


@pytest.mark.parametrize(("name", "prefix"), NAMES.items())
def test_a_name_inside_a_message_resolves_to_its_paper(name: str, prefix: str) -> None:
    for message in (f"Can you summarize {name} for me?", f'What does "{name}" propose?'):
        assert titles(resolve_papers(message, PAPERS)) == [titled(prefix).title], message


def test_papers_come_in_order_of_mention() -> None:
    resolution = resolve_papers("Compare ZIP-FIT, aTLAS and the DTRN paper", PAPERS)
    expected = [titled("ZIP-FIT:"), titled("Knowledge Composition"), titled("Deep Task")]
    assert resolution.matched == expected
    repeated = resolve_papers("aTLAS vs ZIP-FIT: is aTLAS faster?", PAPERS)
    assert titles(repeated) == [titled("Knowledge Composition").title, titled("ZIP-FIT:").title]


def test_ids_and_arxiv_ids_resolve() -> None:
    extra = Paper(paper_id="2407.12345", arxiv_id="2407.12345", title="Gradient Surgery Revisited", abstract="We do.")
    papers = [*PAPERS, extra]
    for text in ("2407.12345", "arXiv:2407.12345v2", "https://arxiv.org/abs/2407.12345"):
        assert resolve_one(text, papers).matched == [extra]
        assert resolve_papers(f"what is in {text}?", papers).matched == [extra]
    tangent = titled("Task Arithmetic in the Tangent")
    assert resolve_one(tangent.paper_id, PAPERS).matched == [tangent]


def test_a_name_two_papers_share_is_ambiguous() -> None:
    lora = resolve_one("LoRA", PAPERS)
    assert lora.matched == []
    assert [(m.mention, m.candidates) for m in lora.ambiguous] == [
        ("LoRA", [titled("In-Context LoRA for"), titled("In-Context Meta LoRA")])
    ]
    in_message = resolve_papers("Which LoRA paper needs fewer samples?", PAPERS)
    assert in_message.matched == [] and [m.mention for m in in_message.ambiguous] == ["LoRA"]


def test_in_context_is_ambiguous_between_the_four_titles_with_it() -> None:
    expected = {
        titled("Soft Injection").title,
        titled("In-Context LoRA for").title,
        titled("In-Context Meta LoRA").title,
        titled("General-Purpose In-Context").title,
    }
    for resolution in (resolve_one("In-Context", PAPERS), resolve_papers('Which "In-Context" paper?', PAPERS)):
        assert resolution.matched == []
        (mention,) = resolution.ambiguous
        assert {paper.title for paper in mention.candidates} == expected


def test_a_vaguer_mention_of_papers_already_named_is_not_ambiguous() -> None:
    message = "How do IC-LoRA and ICM-LoRA differ? Both have 'in-context' and LoRA in the name."
    resolution = resolve_papers(message, PAPERS)
    assert titles(resolution) == [titled("In-Context LoRA for").title, titled("In-Context Meta LoRA").title]
    assert resolution.ambiguous == []


def test_names_that_fit_no_paper_are_reported_unknown() -> None:
    assert resolve_papers('compare with "FooNet"', PAPERS).unknown == ["FooNet"]
    mixed = resolve_papers("compare aTLAS with FooNet", PAPERS)
    assert titles(mixed) == [titled("Knowledge Composition").title] and mixed.unknown == ["FooNet"]
    assert resolve_one("FooNet", PAPERS) == Resolution(unknown=["FooNet"])
    assert resolve_papers('What does "Deep Residual Learning" show?', PAPERS).unknown == ["Deep Residual Learning"]


def test_a_title_head_of_common_words_names_its_paper_only_whole_and_explicitly() -> None:
    less_is_more = titled("Less is more:")
    assert titles(resolve_one("Less is more", PAPERS)) == [less_is_more.title]
    assert titles(resolve_one("less is MORE", PAPERS)) == [less_is_more.title]
    for part in ("less", "is more", "more"):
        assert resolve_one(part, PAPERS).matched == [], part
    assert resolve_papers("Is less more when pruning tokens?", PAPERS).matched == []


@pytest.mark.parametrize("word", ["transformer", "Transformers", "task", "LLM", "LLMs", "learning"])
def test_common_words_are_no_paper_names(word: str) -> None:
    explicit = resolve_one(word, PAPERS)
    assert explicit.matched == [] and explicit.ambiguous == []
    assert resolve_papers(f"Which papers improve the {word}?", PAPERS) == Resolution()


@pytest.mark.parametrize(
    "message",
    [
        "How do large language models handle long context?",
        "Which papers are about multi-task learning or continual learning?",
        "Is less more when it comes to data?",
        "What is a star schema?",
        "Does anything use GPT-4 or T5-based models?",
        "Which work studies zip fit clothing?",
    ],
)
def test_ordinary_questions_resolve_nothing(message: str) -> None:
    assert resolve_papers(message, PAPERS) == Resolution()


def dev_questions() -> list[dict]:
    return [json.loads(line) for line in DEV_SET.read_text().splitlines() if line.strip()]


def test_dev_questions_that_name_papers_resolve_to_them() -> None:
    for question in dev_questions():
        if question["kind"] in ("compare", "summary"):
            resolution = resolve_papers(question["question"], PAPERS)
            assert set(titles(resolution)) == set(question["gold_titles"]), question["id"]
            assert resolution.ambiguous == [] and resolution.unknown == [], question["id"]


def test_dev_questions_that_describe_papers_resolve_nothing_wrong() -> None:
    for question in dev_questions():
        if question["kind"] in ("compare", "summary"):
            continue
        resolution = resolve_papers(question["question"], PAPERS)
        assert resolution.ambiguous == [] and resolution.unknown == [], question["id"]
        assert set(titles(resolution)) <= set(question["gold_titles"]), question["id"]
        if question["kind"] in ("unanswerable", "lookup"):
            assert resolution.matched == [], question["id"]


def test_the_index_is_cached_per_collection_and_rebuilt_on_change() -> None:
    assert AliasIndex.build(PAPERS) is AliasIndex.build(list(PAPERS))
    changed = [*PAPERS[:-1], PAPERS[-1].model_copy(update={"abstract": "We introduce GeniusNet, a counting model."})]
    assert AliasIndex.build(changed) is not AliasIndex.build(PAPERS)
    assert resolve_one("GeniusNet", changed).matched == [changed[-1]]


def test_resolving_a_message_is_fast() -> None:
    messages = [question["question"] for question in dev_questions()]
    index = AliasIndex.build(PAPERS)
    started = time.perf_counter()
    for _ in range(5):
        for message in messages:
            index.resolve(message)
    per_message_ms = (time.perf_counter() - started) / (5 * len(messages)) * 1000
    assert per_message_ms < 5, per_message_ms


def test_empty_inputs() -> None:
    assert resolve_papers("", PAPERS) == Resolution()
    assert resolve_papers("aTLAS", []) == Resolution()
    assert resolve_one("  ", PAPERS) == Resolution()


def test_a_quoted_hyphenated_term_that_titles_also_spell_apart_names_no_paper() -> None:
    # 'long-context' is the "Long-Context" of one title and the "Long Context" of another (held-out h42):
    # a term, left to retrieval, not a name that picks the first paper.
    resolution = resolve_papers("Which paper says tasks lumped together as 'long-context' differ?", PAPERS)
    assert resolution.matched == [] and resolution.ambiguous == []
    # A hyphenated name that only one title has, in any spelling, still names that paper.
    assert titles(resolve_papers("What does 'Rep-MTL' do?", PAPERS)) == [titled("Rep-MTL").title]
