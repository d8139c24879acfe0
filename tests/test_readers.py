from __future__ import annotations

import csv
import io
import json
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.schema import Paper, Problem, ReadResult
from assistant.settings import SAMPLE_COLLECTION
from ingestion.errors import IngestionError
from ingestion.normalize import normalize_text, title_key
from ingestion.readers import MAX_PROBLEMS_PER_FILE, read_bytes, read_path

FIXTURES = Path(__file__).parent / "fixtures"

SAMPLE_TITLES = [
    "Knowledge Composition using Task Vectors with Learned Anisotropic Scaling",
    "TRAD: Enhancing LLM Agents with Step-Wise Thought Retrieval and Aligned Decision",
    "Improving Length-Generalization in Transformers via Task Hinting",
    "MUSCLE: A Model Update Strategy for Compatible LLM Evolution",
    "Robust and Scalable Model Editing for Large Language Models",
    "Understanding the Effect of Noise in LLM Training Data with Algorithmic Chains of Thought",
    "Less is more: Summarizing Patch Tokens for efficient Multi-Label Class-Incremental Learning",
    "Mixture of Tunable Experts -- Behavior Modification of DeepSeek-R1 at Inference Time",
    "Circuit Component Reuse Across Tasks in Transformer Language Models",
    "Soft Injection of Task Embeddings Outperforms Prompt-Based In-Context Learning",
    "In-Context LoRA for Diffusion Transformers",
    "Breaking Focus: Contextual Distraction Curse in Large Language Models",
    "Inverse Scaling: When Bigger Isn't Better",
    "RealEra: Semantic-level Concept Erasure via Neighbor-Concept Mining",
    "Efficient Controllable Multi-Task Architectures",
    "TaskExpert: Dynamically Assembling Multi-Task Representations with Memorial Mixture-of-Experts",
    "Beyond the Imitation Game: Quantifying and extrapolating the capabilities of language models",
    "Discourse-Aware Text Simplification: From Complex Sentences to Linked Propositions",
    "Retrieval Head Mechanistically Explains Long-Context Factuality",
    "ToDRE: Visual Token Pruning via Diversity and Task Awareness for Efficient Large Vision-Language Models",
    "Relevance Filtering for Embedding-based Retrieval",
    "Task Arithmetic in the Tangent Space: Improved Editing of Pre-Trained Models",
    "A-STAR: Test-time Attention Segregation and Retention for Text-to-image Synthesis",
    "SoK: Machine Unlearning for Large Language Models",
    "ZIP-FIT: Embedding-Free Data Selection via Compression-Based Alignment",
    "Improving Generalization in Task-oriented Dialogues with Workflows and Action Plans",
    "Positional Attention: Expressivity and Learnability of Algorithmic Computation",
    "Learning to Generate Instruction Tuning Datasets for Zero-Shot Task Adaptation",
    "Addressing Negative Transfer in Diffusion Models",
    "Set-Based Prompting: Provably Solving the Language Model Order Dependency Problem",
    "Synapse: Trajectory-as-Exemplar Prompting with Memory for Computer Control",
    "Prototype-Sample Relation Distillation: Towards Replay-Free Continual Learning",
    "Understanding Catastrophic Forgetting in Language Models via Implicit Inference",
    "AxFormer: Accuracy-driven Approximation of Transformers for Faster, Smaller and more Accurate NLP Models",
    "Large Language Models with Controllable Working Memory",
    "Flowformer: Linearizing Transformers with Conservation Flows",
    "Deep Task-specific Bottom Representation Network for Multi-Task Recommendation",
    "USCD: Improving Code Generation of LLMs by Uncertainty-Aware Selective Contrastive Decoding",
    "Rep-MTL: Unleashing the Power of Representation-level Task Saliency for Multi-Task Learning",
    "Is It Really Long Context if All You Need Is Retrieval? Towards Genuinely Difficult Long Context NLP",
    "BT^2: Backward-compatible Training with Basis Transformation",
    "In-Context Meta LoRA Generation",
    "When Can Models Learn From Explanations? A Formal Framework for Understanding the Roles of Explanation Data",
    "Talking Heads: Understanding Inter-layer Communication in Transformer Language Models",
    "General-Purpose In-Context Learning by Meta-Learning Transformers",
    "LLM The Genius Paradox: A Linguistic and Math Expert's Struggle with Simple Word-based Counting Problems",
]


def _write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def _page(*blocks: str, newline: str = "\n") -> str:
    """A Daily Papers page: furniture, then the given title/abstract blocks separated by blank lines."""
    furniture = ["new", "Get trending papers in your email inbox!", "Subscribe", "Daily Papers",
                 "byAK and the research community", "Aug 19"]  # fmt: skip
    return (newline * 2).join([*furniture, *blocks]) + newline


ABSTRACT_A = "We study task vectors. They compose well, e.g. across domains (Fig. 3)."
ABSTRACT_B = "Retrieval heads explain factuality. Pruning them causes hallucination."


# --- the real sample -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> ReadResult:
    return read_path(SAMPLE_COLLECTION)


def test_sample_yields_exactly_its_46_titles_in_order(sample: ReadResult) -> None:
    assert len(SAMPLE_TITLES) == 46
    assert [paper.title for paper in sample.papers] == SAMPLE_TITLES
    assert sample.problems == []


def test_sample_titles_are_the_title_lines_of_the_file(sample: ReadResult) -> None:
    lines = SAMPLE_COLLECTION.read_text(encoding="utf-8").splitlines()
    # Six furniture lines, then title, blank, abstract, blank for every paper.
    assert lines[12::4] == SAMPLE_TITLES
    for paper, abstract_line in zip(sample.papers, lines[14::4], strict=True):
        assert paper.abstract == normalize_text(abstract_line)
        assert paper.source == str(SAMPLE_COLLECTION)


def test_sample_has_no_furniture_and_unique_ids(sample: ReadResult) -> None:
    furniture = {"new", "subscribe", "daily papers", "aug 19", "byak and the research community"}
    assert not furniture & {paper.title.casefold() for paper in sample.papers}
    assert len({paper.paper_id for paper in sample.papers}) == 46


def test_sample_latex_percent_is_resolved(sample: ReadResult) -> None:
    uscd = next(paper for paper in sample.papers if paper.title.startswith("USCD"))
    assert "16.59%" in uscd.abstract
    assert "\\%" not in uscd.abstract


def test_sample_keeps_the_double_hyphen_title() -> None:
    result = read_bytes(SAMPLE_COLLECTION.read_bytes(), "daily_papers_aug19.txt")
    assert "Mixture of Tunable Experts -- Behavior Modification of DeepSeek-R1 at Inference Time" in [
        paper.title for paper in result.papers
    ]


# --- the Daily Papers page: robustness -----------------------------------------------------------


def test_page_with_windows_line_endings_and_no_trailing_newline() -> None:
    text = _page("Title One", ABSTRACT_A, "Title Two", ABSTRACT_B, newline="\r\n").rstrip()
    result = read_bytes(text.encode(), "page.txt")
    assert [(paper.title, paper.abstract) for paper in result.papers] == [
        ("Title One", ABSTRACT_A),
        ("Title Two", ABSTRACT_B),
    ]
    assert result.problems == []


def test_page_with_extra_blank_lines_and_more_furniture() -> None:
    text = "\n\n\n".join(["Submit paper", "Title One", "", "42", ABSTRACT_A, "Upvote", "·", "Title Two", ABSTRACT_B])
    result = read_bytes(text.encode(), "page.txt")
    assert [paper.title for paper in result.papers] == ["Title One", "Title Two"]
    assert result.problems == []


@pytest.mark.parametrize(
    "line",
    ["Aug 19", "August 19, 2025", "Tue, Aug 19", "19 Aug 2025", "2025-08-19", "on Aug 20, 2025", "Published on Aug 18",
     "Submitted by akhaliq", "Upvote", "127", "1.2k", "+3 authors", "·", "Abstract", "Submit paper"],
)  # fmt: skip
def test_page_furniture_never_becomes_a_title(line: str) -> None:
    text = _page(line, "Title One", ABSTRACT_A, line, "Title Two", ABSTRACT_B)
    result = read_bytes(text.encode(), "page.txt")
    assert [paper.title for paper in result.papers] == ["Title One", "Title Two"]
    assert result.problems == []


def test_abstract_without_a_title_is_a_problem_with_its_line() -> None:
    text = _page("Title One", ABSTRACT_A, ABSTRACT_B, "Title Three", ABSTRACT_A)
    result = read_bytes(text.encode(), "page.txt")
    assert [paper.title for paper in result.papers] == ["Title One", "Title Three"]
    (problem,) = result.problems
    assert problem.source == "page.txt"
    assert problem.location == "line 17"
    assert "abstract without a title" in problem.reason


def test_title_without_an_abstract_is_a_problem_with_its_line() -> None:
    text = _page("Title One", "Title Two", ABSTRACT_B, "Title Three")
    result = read_bytes(text.encode(), "page.txt")
    assert [paper.title for paper in result.papers] == ["Title Two"]
    assert [problem.location for problem in result.problems] == ["line 13", "line 19"]
    assert result.problems[0].reason.startswith("title 'Title One' has no abstract")
    assert result.problems[1].reason.startswith("title 'Title Three' has no abstract")


def test_a_short_abstract_that_looks_like_a_title_is_still_an_abstract() -> None:
    text = _page("Title One", "A short abstract without a final period", "Title Two", ABSTRACT_B)
    result = read_bytes(text.encode(), "page.txt")
    assert [(paper.title, paper.abstract) for paper in result.papers] == [
        ("Title One", "A short abstract without a final period"),
        ("Title Two", ABSTRACT_B),
    ]


def test_title_pasted_right_under_the_previous_abstract_is_split_off() -> None:
    text = "Title One\n\n" + ABSTRACT_A + "\nTitle Two\n\n" + ABSTRACT_B + "\n"
    result = read_bytes(text.encode(), "page.txt")
    assert [(paper.title, paper.abstract) for paper in result.papers] == [
        ("Title One", ABSTRACT_A),
        ("Title Two", ABSTRACT_B),
    ]
    assert result.problems == []


def test_short_last_line_of_a_wrapped_abstract_stays_in_it() -> None:
    text = _page("Title One", "We study task vectors.\nCode at github.com/x/y", "Title Two", ABSTRACT_B)
    result = read_bytes(text.encode(), "page.txt")
    assert result.papers[0].abstract == "We study task vectors. Code at github.com/x/y"
    assert [paper.title for paper in result.papers] == ["Title One", "Title Two"]


def test_hard_wrapped_abstract_is_one_paragraph() -> None:
    text = _page("Title One", "We study task vectors.\nThey compose well,\ne.g. across domains.")
    (paper,) = read_bytes(text.encode(), "page.txt").papers
    assert paper.abstract == "We study task vectors. They compose well, e.g. across domains."


def test_undecodable_bytes_make_only_their_record_a_problem() -> None:
    page = _page("Title One", ABSTRACT_A, "Title Two", "Caf\u00e9 latte is bad.", "Title Three", ABSTRACT_B)
    data = page.encode().replace("Caf\u00e9".encode(), b"Caf\xe9\xff")  # line 19: Latin-1 and junk bytes
    result = read_bytes(data, "page.txt")
    assert [paper.title for paper in result.papers] == ["Title One", "Title Three"]
    (problem,) = result.problems
    assert (problem.source, problem.location) == ("page.txt", "line 19")
    assert "not valid UTF-8" in problem.reason


def test_utf8_bom_is_ignored() -> None:
    result = read_bytes(b"\xef\xbb\xbf" + _page("Title One", ABSTRACT_A).encode(), "page.txt")
    assert [paper.title for paper in result.papers] == ["Title One"]


def test_utf16_text_is_read() -> None:
    result = read_bytes(_page("Titel \u00fcber Eins", ABSTRACT_A).encode("utf-16"), "page.txt")
    assert [paper.title for paper in result.papers] == ["Titel \u00fcber Eins"]


def test_page_without_any_paper_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "notes.txt", _page("Only A Title"))
    with pytest.raises(IngestionError, match=r"notes\.txt: no valid paper found \(line 13: title 'Only A Title'"):
        read_path(path)


# --- JSON, JSON Lines, the HF API, CSV ----------------------------------------------------------


def test_json_list_with_every_optional_field() -> None:
    result = read_path(str(FIXTURES / "papers.json"))
    assert result.problems == []
    flowformer, relevance, working_memory = result.papers
    assert flowformer.paper_id == flowformer.arxiv_id == "2202.06258"
    assert flowformer.authors[:2] == ["Haixu Wu", "Jialong Wu"]
    assert str(flowformer.published) == "2022-02-13"
    assert relevance.abstract.startswith("In embedding-based retrieval, Approximate Nearest Neighbor (ANN) search")
    assert "datasets. While maximizing" in relevance.abstract  # the summary's newline became a space
    assert relevance.authors == ["Nicholas Rossi", "Juexin Lin"]
    assert relevance.url == "https://arxiv.org/abs/2408.04887"
    assert relevance.arxiv_id is None
    assert str(relevance.published) == "2024-08-09"
    assert working_memory.authors == ["Daliang Li", "Ankit Singh Rawat", "Manzil Zaheer", "Xin Wang"]
    assert working_memory.arxiv_id == "2211.05110"  # a generic "id" that is an arXiv id


@pytest.mark.parametrize("key", ["papers", "data", "items"])
def test_json_object_wrapping_the_list(key: str) -> None:
    records = json.loads((FIXTURES / "papers.json").read_text())
    result = read_bytes(json.dumps({"date": "2025-08-19", key: records}).encode(), "wrapped.json")
    assert len(result.papers) == 3


def test_json_lines_skips_blank_lines_and_reads_summary() -> None:
    result = read_path(FIXTURES / "papers.jsonl")
    assert result.problems == []
    assert [paper.title.split(":")[0] for paper in result.papers] == ["SoK", "Synapse", "ZIP-FIT"]
    assert "85.1% faster" in result.papers[2].abstract
    assert result.papers[1].paper_id == "2306.07863"


def test_hf_api_response() -> None:
    result = read_path(FIXTURES / "hf_daily_papers_sample.json")
    assert result.problems == []
    assert [paper.arxiv_id for paper in result.papers] == ["2305.12827", "2404.15574", "2410.23775", "2306.09479"]
    tangent = result.papers[0]
    assert tangent.paper_id == "2305.12827"
    assert tangent.url == "https://arxiv.org/abs/2305.12827"
    assert tangent.authors == ["Guillermo Ortiz-Jimenez", "Alessandro Favero", "Pascal Frossard"]
    assert str(tangent.published) == "2023-05-22"
    assert "\n" not in tangent.abstract


def test_hf_feed_and_page_scrape_of_the_same_papers_merge(tmp_path: Path) -> None:
    (tmp_path / "feed").mkdir()
    _write(tmp_path / "feed", "hf.json", (FIXTURES / "hf_daily_papers_sample.json").read_bytes())
    _write(tmp_path, "page.txt", SAMPLE_COLLECTION.read_bytes())
    result = read_path(tmp_path)
    assert len(result.papers) == 46
    merged = {paper.title: paper for paper in result.papers}[
        "Retrieval Head Mechanistically Explains Long-Context Factuality"
    ]
    assert merged.paper_id == "2404.15574"
    assert merged.authors[0] == "Wenhao Wu"


def test_csv_with_case_insensitive_headers_multiline_fields_and_crlf() -> None:
    result = read_path(FIXTURES / "papers.csv")
    assert result.problems == []
    efficient, backward, meta_lora = result.papers
    assert efficient.paper_id == "2308.11744"
    assert efficient.authors == ["Abhishek Aich", "Samuel Schulter"]
    assert backward.title == "BT^2: Backward-compatible Training with Basis Transformation"
    assert backward.abstract.endswith(
        "updating to a better representation model. This process is known as backfilling."
    )
    assert backward.authors == ["Yifei Zhou", "Zilu Li"]
    assert backward.url == "https://arxiv.org/abs/2211.03989"
    assert meta_lora.authors == [] and meta_lora.published is None


@pytest.mark.parametrize(("delimiter", "name"), [("\t", "papers.tsv"), (";", "papers.csv"), ("\t", "papers.txt")])
def test_csv_delimiters_are_detected(delimiter: str, name: str) -> None:
    text = f"TITLE{delimiter}Summary\nA Title{delimiter}An abstract, with a comma.\n"
    (paper,) = read_bytes(text.encode(), name).papers
    assert (paper.title, paper.abstract) == ("A Title", "An abstract, with a comma.")


def test_csv_without_required_columns_names_the_columns_found(tmp_path: Path) -> None:
    path = _write(tmp_path, "list.csv", "name,description\nx,y\n")
    with pytest.raises(IngestionError, match=r"list\.csv: .*'title' and 'abstract'.*found 'name', 'description'"):
        read_path(path)


def test_csv_bad_rows_are_problems_with_spreadsheet_row_numbers() -> None:
    rows = [
        "title,abstract,published",
        "Good One,Fine abstract.,2025-08-19",
        ",Abstract without title.,",
        "No Abstract,,",
        "Bad Date,Fine abstract.,19/08/2025",
        "Too,Many,Fields,Here",
        "",
        "Good Two,Another fine abstract.,",
    ]
    result = read_bytes("\n".join(rows).encode(), "batch.csv")
    assert [paper.title for paper in result.papers] == ["Good One", "Good Two"]
    assert [(problem.source, problem.location) for problem in result.problems] == [
        ("batch.csv", "row 3"),
        ("batch.csv", "row 4"),
        ("batch.csv", "row 5"),
        ("batch.csv", "row 6"),
    ]
    reasons = [problem.reason for problem in result.problems]
    assert reasons[0] == "empty title"
    assert reasons[1] == "empty abstract"
    assert "'19/08/2025' is not an ISO date" in reasons[2]
    assert "4 fields but the header has 3" in reasons[3]


def test_json_bad_records_are_problems_and_the_rest_is_read() -> None:
    records = [
        {"title": "Good", "abstract": "Fine."},
        "just a string",
        {"title": "No abstract"},
        {"title": {"nested": ["junk"]}, "abstract": "x"},
        {"title": "Bad authors", "abstract": "x", "authors": [1, 2]},
        {"title": "", "summary": "x"},
        {"paper": {"id": "2407.12345", "title": "HF entry without summary"}},
        {"title": "Good too", "summary": "Also fine."},
    ]
    result = read_bytes(json.dumps(records).encode(), "batch.json")
    assert [paper.title for paper in result.papers] == ["Good", "Good too"]
    assert [(problem.location, problem.reason) for problem in result.problems] == [
        ("record 2", "expected an object with a title and an abstract, found text"),
        ("record 3", "missing abstract"),
        ("record 4", "title must be text, found an object"),
        ("record 5", "author 1 must be a name or an object with a 'name', found a number"),
        ("record 6", "empty title"),
        ("record 7", "missing abstract"),
    ]
    assert {problem.source for problem in result.problems} == {"batch.json"}


def test_json_lines_bad_lines_are_problems_with_line_numbers() -> None:
    lines = [
        json.dumps({"title": "Good", "abstract": "Fine."}),
        '{"title": "Broken", "abstract": ',
        "[1, 2, 3]",
        "",
        json.dumps({"title": "Good too", "abstract": "Fine too."}),
    ]
    result = read_bytes("\n".join(lines).encode(), "batch.jsonl")
    assert [paper.title for paper in result.papers] == ["Good", "Good too"]
    assert [problem.location for problem in result.problems] == ["line 2", "line 3"]
    assert result.problems[0].reason.startswith("not valid JSON (Expecting value at column 32)")
    assert result.problems[1].reason == "expected an object with a title and an abstract, found a list"


def test_json_lines_undecodable_line_is_a_problem() -> None:
    data = b'{"title": "Good", "abstract": "Fine."}\n{"title": "Bad", "abstract": "caf\xe9"}\n'
    result = read_bytes(data, "batch.jsonl")
    assert [paper.title for paper in result.papers] == ["Good"]
    assert (result.problems[0].location, "not valid UTF-8" in result.problems[0].reason) == ("line 2", True)


def test_invalid_json_document_is_an_error_with_position(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.json", '[{"title": "x", "abstract": "y"},\n  {"title": ]')
    with pytest.raises(IngestionError, match=r"broken\.json: not valid JSON \(Expecting value at line 2, column 13\)"):
        read_path(path)


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    with pytest.raises(IngestionError, match="nested too deeply"):
        read_bytes(b"[" * 100_000 + b"]" * 100_000, "deep.json")


def test_json_wrapper_that_is_not_a_list_is_an_error() -> None:
    with pytest.raises(IngestionError, match=r"w\.json: 'papers' must be a list of papers, found an object"):
        read_bytes(b'{"papers": {"title": "x"}}', "w.json")


def test_json_object_without_a_paper_list_names_its_keys() -> None:
    with pytest.raises(IngestionError, match=r"found an object with keys 'date', 'count'"):
        read_bytes(b'{"date": "2025-08-19", "count": 3}', "feed.json")


# --- format sniffing ---------------------------------------------------------------------------


def test_txt_that_is_json_is_read_as_json() -> None:
    data = (FIXTURES / "papers.json").read_bytes()
    assert len(read_bytes(data, "export.txt").papers) == 3


def test_json_extension_holding_json_lines_is_read_as_json_lines() -> None:
    assert len(read_bytes((FIXTURES / "papers.jsonl").read_bytes(), "papers.json").papers) == 3


def test_single_json_line_is_one_paper() -> None:
    (paper,) = read_bytes(b'{"title": "Only", "abstract": "One."}', "one.jsonl").papers
    assert paper.title == "Only"


@pytest.mark.parametrize("name", ["download", "papers.dat", "PAPERS.TXT"])
def test_unknown_or_missing_extension_is_sniffed(name: str) -> None:
    assert len(read_bytes(SAMPLE_COLLECTION.read_bytes(), name).papers) == 46
    assert len(read_bytes((FIXTURES / "papers.csv").read_bytes(), name).papers) == 3
    assert len(read_bytes((FIXTURES / "hf_daily_papers_sample.json").read_bytes(), name).papers) == 4


def test_truly_unknown_format_is_an_error() -> None:
    with pytest.raises(IngestionError, match=r"notes\.dat: unknown format; expected a Daily Papers page"):
        read_bytes(b"key = value\nother = thing.\n", "notes.dat")


def test_html_is_an_error_that_says_what_to_do() -> None:
    with pytest.raises(IngestionError, match=r"looks like HTML.*copy the page's text"):
        read_bytes(b"<!doctype html><html><body>Daily Papers</body></html>", "papers.html")


# --- whole-file errors ---------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IngestionError, match=r"nope\.txt: no such file or directory"):
        read_path(tmp_path / "nope.txt")


@pytest.mark.parametrize("content", [b"", b"  \n\n\t\n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(IngestionError, match=r"empty\.txt: the file is empty"):
        read_path(_write(tmp_path, "empty.txt", content))


def test_binary_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "paper.pdf.txt", b"%PDF-1.7\n\x00\x01\x02binary")
    with pytest.raises(IngestionError, match=r"paper\.pdf\.txt: not a text file"):
        read_path(path)


def test_pickle_is_never_unpickled() -> None:
    import pickle

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("unpickled!",))

    with pytest.raises(IngestionError):
        read_bytes(pickle.dumps(Boom()), "papers.pkl")


def test_directory_reads_supported_files_sorted_and_reports_the_rest(tmp_path: Path) -> None:
    _write(tmp_path, "b.jsonl", json.dumps({"title": "Second File", "abstract": "B."}) + "\n")
    _write(tmp_path, "a.txt", _page("First File", ABSTRACT_A))
    _write(
        tmp_path,
        "c.csv",
        "title,abstract\nfirst file,A much longer abstract for the same paper: it wins because it says more.\n",
    )
    _write(tmp_path, "notes.pdf", b"%PDF")
    _write(tmp_path, "empty.json", b"")
    _write(tmp_path, ".DS_Store", b"\x00\x00")
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub", "d.json", json.dumps([{"title": "Nested File", "abstract": "D."}]))
    result = read_path(tmp_path)
    # "first file" in c.csv is a.txt's paper: one paper, at a.txt's position, with the abstract read last.
    assert [paper.title for paper in result.papers] == ["first file", "Second File", "Nested File"]
    assert result.papers[0].abstract.startswith("A much longer abstract")
    assert [(Path(problem.source).name, problem.location) for problem in result.problems] == [
        ("empty.json", ""),
        ("notes.pdf", ""),
        ("a.txt", "line 13"),
    ]
    assert "the file is empty" in result.problems[0].reason
    assert "skipped" in result.problems[1].reason
    # a.txt's abstract is not kept, and says so.
    assert result.problems[2].reason == (
        f"same title as {tmp_path / 'c.csv'} row 2 with a different abstract; "
        f"kept {tmp_path / 'c.csv'} row 2 (the record read last wins)"
    )


def test_directory_without_readable_files(tmp_path: Path) -> None:
    _write(tmp_path, "notes.pdf", b"%PDF")
    with pytest.raises(IngestionError, match="no readable files"):
        read_path(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestionError, match="no readable files"):
        read_path(tmp_path / "empty")


def test_duplicates_within_one_file_are_merged() -> None:
    records = [
        {"title": "Same Paper", "abstract": "Short."},
        {"title": "Other", "abstract": "Other."},
        {"title": "same paper!", "abstract": "Longer abstract.", "arxiv_id": "2407.12345"},
    ]
    result = read_bytes(json.dumps(records).encode(), "dupes.json")
    assert [(paper.paper_id, paper.title) for paper in result.papers] == [
        ("2407.12345", "same paper!"),
        (result.papers[1].paper_id, "Other"),
    ]


def test_problems_are_capped_per_file() -> None:
    lines = ["not json"] * (MAX_PROBLEMS_PER_FILE + 50) + [json.dumps({"title": "Good", "abstract": "Fine."})]
    result = read_bytes("\n".join(lines).encode(), "noisy.jsonl")
    assert len(result.papers) == 1
    assert len(result.problems) == MAX_PROBLEMS_PER_FILE + 1
    assert result.problems[-1].reason == "50 more bad records not listed"


def test_large_json_lines_file_streams(tmp_path: Path) -> None:
    abstract = "We propose a method. " * 100  # ~2 KB
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for number in range(1_000):
            out.write(json.dumps({"title": f"Paper number {number}", "abstract": abstract}) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    result = read_path(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(result.papers) == 1_000
    # The papers themselves are about the file's size; the reader must not hold several more copies.
    assert peak < 4 * size, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.1f} MiB file"


# --- properties --------------------------------------------------------------------------------

NAMES = ["x.txt", "x.json", "x.jsonl", "x.csv", "x.tsv", "x", "x.dat"]


def _check_result(result: ReadResult, name: str) -> None:
    assert result.papers, "a result without papers must have been an IngestionError"
    for paper in result.papers:
        assert isinstance(paper, Paper) and paper.source == name
    for problem in result.problems:
        assert isinstance(problem, Problem) and problem.source == name


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=2_000), name=st.sampled_from(NAMES))
def test_arbitrary_bytes_never_crash(data: bytes, name: str) -> None:
    try:
        result = read_bytes(data, name)
    except IngestionError as error:
        assert str(error).startswith(name)
        return
    _check_result(result, name)


_PAGE_ALPHABET = st.sampled_from(list("abcdefghij XYZ.,:;!?-\n\r\t\"'{}[]0123456789\u00e9\ufffd"))


@settings(max_examples=100, deadline=None)
@given(text=st.text(_PAGE_ALPHABET, max_size=600) | st.text(max_size=600), name=st.sampled_from(NAMES))
def test_arbitrary_text_never_crashes(text: str, name: str) -> None:
    try:
        result = read_bytes(text.encode(), name)
    except IngestionError:
        return
    _check_result(result, name)


_WORD = st.text(st.characters(categories=["Lu", "Ll", "Lo"]), min_size=1, max_size=10)
_TITLE = st.lists(_WORD, min_size=3, max_size=12).map(" ".join)
_SENTENCE = st.lists(_WORD, min_size=1, max_size=15).map(lambda words: " ".join(words) + ".")
_ABSTRACT = st.lists(_SENTENCE, min_size=1, max_size=6).map(" ".join)
_RECORDS = st.lists(
    st.tuples(_TITLE, _ABSTRACT, st.lists(_WORD, max_size=3)),
    min_size=1,
    max_size=8,
    unique_by=lambda record: title_key(record[0]),
).filter(lambda records: all(title_key(title) for title, _, _ in records))


def _serialise(records: list[tuple[str, str, list[str]]], file_format: str) -> tuple[bytes, str]:
    if file_format == "page":
        blocks = [block for title, abstract, _ in records for block in (title, abstract)]
        return _page(*blocks).encode(), "page.txt"
    dicts = [{"title": title, "abstract": abstract, "authors": authors} for title, abstract, authors in records]
    if file_format == "json":
        return json.dumps(dicts).encode(), "papers.json"
    if file_format == "jsonl":
        return "\n".join(json.dumps(item, ensure_ascii=False) for item in dicts).encode(), "papers.jsonl"
    if file_format == "hf":
        entries = [
            {"paper": {"title": t, "summary": a, "authors": [{"name": n} for n in names]}, "numComments": 0}
            for t, a, names in records
        ]
        return json.dumps(entries).encode(), "hf.json"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["title", "abstract", "authors"])
    writer.writerows([title, abstract, "; ".join(authors)] for title, abstract, authors in records)
    return buffer.getvalue().encode(), "papers.csv"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(records=_RECORDS, file_format=st.sampled_from(["page", "json", "jsonl", "hf", "csv"]))
def test_no_valid_record_is_lost(records: list[tuple[str, str, list[str]]], file_format: str) -> None:
    data, name = _serialise(records, file_format)
    result = read_bytes(data, name)
    assert result.problems == []
    assert [(paper.title, paper.abstract) for paper in result.papers] == [
        (normalize_text(title), normalize_text(abstract)) for title, abstract, _ in records
    ]


_JUNK = st.none() | st.integers() | st.lists(st.text()) | st.dictionaries(st.text("0123456789", max_size=3), st.text())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(records=_RECORDS, junk=st.lists(_JUNK, min_size=1, max_size=5), as_lines=st.booleans())
def test_valid_records_survive_junk_records(
    records: list[tuple[str, str, list[str]]], junk: list[object], as_lines: bool
) -> None:
    items: list[object] = [{"title": title, "abstract": abstract} for title, abstract, _ in records]
    items[1:1] = junk
    if as_lines:
        data, name = "\n".join(json.dumps(item) for item in items).encode(), "mixed.jsonl"
    else:
        data, name = json.dumps(items).encode(), "mixed.json"
    result = read_bytes(data, name)
    assert [paper.title for paper in result.papers] == [normalize_text(title) for title, _, _ in records]
    assert len(result.problems) == len(junk)


# --- the two dates: published and listed --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # The first two entries of the archive's raw/*.json: one per generation of the API's fields.
        ("hf_daily_papers_2024-08-19.json", [("2408.08872", "2024-08-16", "2024-08-19"),
                                             ("2408.08459", "2024-08-15", "2024-08-19")]),
        ("hf_daily_papers_2025-06-10.json", [("2506.08007", "2025-06-09", "2025-06-10"),
                                             ("2506.07044", "2025-06-08", "2025-06-10")]),
        ("hf_daily_papers_2026-08-21.json", [("2608.19880", "2026-08-20", "2026-08-21"),
                                             ("2608.18580", "2026-08-19", "2026-08-21")]),
    ],
)  # fmt: skip
def test_hf_api_responses_of_every_generation_give_the_arxiv_date_and_the_listing_day(
    name: str, expected: list[tuple[str, str, str]]
) -> None:
    result = read_path(FIXTURES / name)
    assert result.problems == []
    assert [(p.arxiv_id, str(p.published), str(p.listed)) for p in result.papers] == expected


def test_an_hf_entry_listed_again_keeps_its_own_earlier_listing_day() -> None:
    from datetime import date

    from ingestion.readers import parse_hf_daily_papers

    entry = {
        "paper": {"id": "2506.08007", "title": "T", "summary": "S.", "submittedOnDailyAt": "2025-06-10T00:43:01Z"},
    }
    later_page = parse_hf_daily_papers(json.dumps([entry]).encode(), "hf:2025-06-12", listed=date(2025, 6, 12))
    assert later_page.papers[0].listed == date(2025, 6, 10)
    bare = {"paper": {"id": "2506.08007", "title": "T", "summary": "S."}}
    (paper,) = parse_hf_daily_papers(json.dumps([bare]).encode(), "hf:x", listed=date(2025, 6, 12)).papers
    assert (paper.listed, paper.published) == (date(2025, 6, 12), None)


def test_the_archives_date_field_is_the_listing_day_not_the_publication_date() -> None:
    record = {"id": "2405.16406", "title": "T", "abstract": "A.", "date": "2024-05-27", "authors": ["A B"]}
    (paper,) = read_bytes(json.dumps(record).encode() + b"\n", "papers.jsonl").papers
    assert (str(paper.listed), paper.published) == ("2024-05-27", None)
    both = {**record, "published": "2024-05-24", "listed_on": "2024-05-28"}
    (paper,) = read_bytes(json.dumps(both).encode() + b"\n", "papers.jsonl").papers
    assert (str(paper.published), str(paper.listed)) == ("2024-05-24", "2024-05-28")


def test_csv_listed_and_published_columns() -> None:
    text = "title,abstract,Published At,Listed\nA Title,An abstract.,2025-08-18,2025-08-19\nB,Another.,,bad\n"
    result = read_bytes(text.encode(), "day.csv")
    (paper,) = result.papers
    assert (str(paper.published), str(paper.listed)) == ("2025-08-18", "2025-08-19")
    assert [(p.location, p.reason) for p in result.problems] == [
        ("row 3", "listed 'bad' is not an ISO date (YYYY-MM-DD)")
    ]


def test_a_wrapper_objects_date_is_the_day_of_its_papers_unless_a_paper_says_its_own() -> None:
    records = [{"title": "A", "abstract": "One."}, {"title": "B", "abstract": "Two.", "listed": "2025-08-18"}]
    result = read_bytes(json.dumps({"date": "2025-08-19", "papers": records}).encode(), "day.json")
    assert [str(paper.listed) for paper in result.papers] == ["2025-08-19", "2025-08-18"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Aug 19", None), ("Aug 19, 2025", "2025-08-19"), ("Tue, August 19 2025", "2025-08-19"),
     ("19 Aug 2025", "2025-08-19"), ("2025-08-19", "2025-08-19"), ("Feb 30, 2025", None)],
)  # fmt: skip
def test_a_page_scrapes_date_line_gives_the_listing_day_only_with_a_year(header: str, expected: str | None) -> None:
    page = _page("First Title", ABSTRACT_A).replace("Aug 19", header)
    page += f"\n2025-08-20\n\nSecond Title\n\n{ABSTRACT_B}\n"
    first, second = read_bytes(page.encode(), "page.txt").papers
    assert (first.title, str(first.listed) if first.listed else None) == ("First Title", expected)
    assert str(second.listed) == "2025-08-20"


def test_the_sample_scrape_has_no_year_so_no_listing_day() -> None:
    assert {paper.listed for paper in read_path(SAMPLE_COLLECTION).papers} == {None}
