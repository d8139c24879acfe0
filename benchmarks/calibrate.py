"""Recompute the answer flow's cutoffs from the labelled evaluation sets, and the support check's calibration.

    python -m benchmarks.calibrate [FILES...]      (default: the dev and both held-out sets)

Ingests the sample collection into a temporary store, plans every question as the assistant
does (the rules planner: no model is asked), retrieves, and gathers the evidence. Then, for
each cutoff of ``Settings.answer``, prints what the labelled questions show and the value a
stated rule chooses, beside the value in use:

- ``min_relevance``: the best hit's similarity of every answerable question must clear it;
  rule: the lowest answerable similarity less a 0.10 margin, rounded down to 0.05.
- ``min_relevance_uncovered`` and ``sentence_answers``: among questions with a word no abstract
  has and no named paper, the pair (best similarity, best sentence) below which a question is
  declined; rule: the pair on a 0.01 grid that declines the most unanswerable questions and no
  answerable one, the lowest such pair.
- ``clear_lead`` and ``clear_coverage``: among one-paper questions, the lead of the paper read
  over the next and its coverage of the question's key terms; rule: the smallest value, on a
  0.05 grid, above every unanswerable question's.
- ``evidence_margin`` and ``listed_evidence_margin``: how far below the best paper's sentence a
  gold paper's best sentence falls; rule: the largest gap of a gold paper, rounded up to 0.05.
- ``restated_share``: the share of an answering sentence's key terms that are the question's
  (the best sentence of a gold paper); rule: the 90th percentile, rounded up to 0.05, so that at
  most one answering sentence in ten would be taken for a restatement (a model's restatements
  are not labelled, so this bounds the cutoff from one side only).

Last, the support check's calibration set that :mod:`assistant.support` describes, rebuilt from
the sample collection: every abstract sentence cited to its own paper, and to its nearest other
paper (the hand-written paraphrases and planted claims of that docstring are not in the
repository and are not rebuilt).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.evidence import gather
from assistant.llm.fake import FakeLLM
from assistant.outcomes import Shape
from assistant.schema import Source
from assistant.service import PaperAssistant
from assistant.settings import SAMPLE_COLLECTION, Settings
from assistant.store import PaperStore
from assistant.support import SUPPORTED_CITED, check_support
from assistant.text import key_stems, split_sentences
from ingestion.pipeline import ingest_paths

ROOT = Path(__file__).resolve().parent.parent
SETS = [ROOT / "tests/data/dev.jsonl", ROOT / "benchmarks/data/heldout.jsonl", ROOT / "benchmarks/data/heldout2.jsonl"]


@dataclass
class Measured:
    kind: str
    shape: Shape
    named: bool
    uncovered: bool
    best: float
    lead: float
    coverage: float
    top_sentence: float
    gold_gaps: list[float]
    answer_share: float | None


def _down(value: float, step: float) -> float:
    return math.floor(value / step + 1e-9) * step


def _up(value: float, step: float) -> float:
    return math.ceil(value / step - 1e-9) * step


def measure(assistant: PaperAssistant, item: dict[str, object]) -> Measured:
    question = str(item["question"])
    plan = assistant.plan(question)
    hits = assistant.retriever.search(plan.message, assistant.settings.answer.top_k)
    sims = sorted(((hit.similarity or 0.0), hit.paper.paper_id) for hit in hits)[::-1]
    best = sims[0][0] if sims else 0.0
    lead = best - (sims[1][0] if len(sims) > 1 else 0.0)
    top = hits[0].paper if hits else None
    asked = key_stems(plan.message)
    coverage = len(asked & key_stems(f"{top.title} {top.abstract}")) / len(asked) if top is not None and asked else 0.0
    papers = list({hit.paper.paper_id: hit.paper for hit in [*hits]}.values())
    evidence = gather(plan.message, papers, assistant.store.embedder, figures=plan.shape is Shape.FIGURE)
    top_sentence = max((e.relevance for e in evidence), default=0.0)
    titles = item.get("gold_titles")
    gold = {str(title).casefold() for title in titles} if isinstance(titles, list) else set()
    gold_evidence = [e for e in evidence if e.paper.title.casefold() in gold]
    gaps = [top_sentence - e.relevance for e in gold_evidence]
    shares = [
        len(terms & asked) / len(terms)
        for e in gold_evidence
        if e.sentences and (terms := key_stems(e.sentences[e.best]))
    ]
    return Measured(
        kind=str(item["kind"]),
        shape=plan.shape,
        named=bool(plan.papers),
        uncovered=bool(plan.uncovered),
        best=best,
        lead=lead,
        coverage=coverage,
        top_sentence=top_sentence,
        gold_gaps=gaps,
        answer_share=max(shares) if shares else None,
    )


def report(rows: Sequence[Measured], answer: Settings) -> None:
    cutoffs = answer.answer
    answerable = [r for r in rows if r.kind != "unanswerable"]
    unanswerable = [r for r in rows if r.kind == "unanswerable"]
    low = min(r.best for r in answerable)
    print(f"questions: {len(rows)} ({len(unanswerable)} unanswerable)")
    print(
        f"\nmin_relevance: answerable best similarity from {low:.2f}; unanswerable "
        f"{min(r.best for r in unanswerable):.2f}-{max(r.best for r in unanswerable):.2f}"
    )
    print(f"  chosen {_down(low - 0.10, 0.05):.2f} (in use {cutoffs.min_relevance:.2f})")

    gated = [r for r in rows if r.uncovered and not r.named]
    best_pair, caught = (0.0, 0.0), -1
    for x in np.arange(0.0, 0.71, 0.01):
        for y in np.arange(0.0, 0.91, 0.01):
            declined = [r for r in gated if r.best < x and r.top_sentence < y]
            if any(r.kind != "unanswerable" for r in declined):
                continue
            if len(declined) > caught:
                best_pair, caught = (float(x), float(y)), len(declined)
    print(
        f"\nmin_relevance_uncovered / sentence_answers: {len(gated)} questions with a word no abstract has "
        f"({sum(r.kind == 'unanswerable' for r in gated)} unanswerable)"
    )
    print(
        f"  chosen {best_pair[0]:.2f} / {best_pair[1]:.2f}, declining {caught} unanswerable and no answerable "
        f"(in use {cutoffs.min_relevance_uncovered:.2f} / {cutoffs.sentence_answers:.2f})"
    )

    one = [r for r in rows if r.shape is Shape.ONE_PAPER]
    one_unanswerable = [r for r in one if r.kind == "unanswerable"]
    if one_unanswerable:
        lead, cover = max(r.lead for r in one_unanswerable), max(r.coverage for r in one_unanswerable)
        print(f"\nclear_lead / clear_coverage: {len(one)} one-paper questions; unanswerable up to lead {lead:.2f}, "
              f"coverage {cover:.2f}")  # fmt: skip
        print(
            f"  chosen {_up(lead + 1e-6, 0.05):.2f} / {_up(cover + 1e-6, 0.05):.2f} "
            f"(in use {cutoffs.clear_lead:.2f} / {cutoffs.clear_coverage:.2f})"
        )

    for name, listed in (("evidence_margin", False), ("listed_evidence_margin", True)):
        gaps = [gap for r in answerable if (r.shape is Shape.PAPERS) == listed for gap in r.gold_gaps]
        if gaps:
            print(f"\n{name}: gold papers' best sentence below the best paper's, up to {max(gaps):.2f} "
                  f"(median {float(np.median(gaps)):.2f}, {len(gaps)} gold papers retrieved)")  # fmt: skip
            print(f"  chosen {_up(max(gaps), 0.05):.2f} (in use {getattr(cutoffs, name):.2f})")

    shares = [r.answer_share for r in answerable if r.answer_share is not None]
    if shares:
        print(f"\nrestated_share: answering sentences share up to {max(shares):.2f} of their key terms with the question "
              f"(median {float(np.median(shares)):.2f})")  # fmt: skip
        chosen = min(1.0, _up(float(np.percentile(shares, 90)), 0.05))
        print(f"  chosen {chosen:.2f} (in use {cutoffs.restated_share:.2f})")


def support_calibration(assistant: PaperAssistant) -> None:
    papers = [stats.paper for stats in assistant.store.list_papers()]
    embedder = assistant.store.embedder
    vectors = np.asarray(embedder([p.abstract for p in papers]), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    closeness = vectors @ vectors.T
    np.fill_diagonal(closeness, -1.0)
    own_scores: list[float] = []
    other_scores: list[float] = []
    for i, paper in enumerate(papers):
        neighbour = papers[int(np.argmax(closeness[i]))]
        sources = [Source.of(1, paper), Source.of(2, neighbour)]
        sentences = split_sentences(" ".join(paper.abstract.split()))
        own = check_support("\n\n".join(f"{s} [1]" for s in sentences), sources, embedder)
        other = check_support("\n\n".join(f"{s} [2]" for s in sentences), sources, embedder)
        own_scores += [v.score for v in own.sentences if v.kind == "claim" and v.supported]
        own_scores += [0.0 for v in own.sentences if v.kind == "claim" and not v.supported]
        other_scores += [v.score if v.supported else 0.0 for v in other.sentences if v.kind == "claim"]
    supported_own = sum(score > 0 for score in own_scores)
    wrongly = sum(score > 0 for score in other_scores)
    print(f"\nsupport check: {len(own_scores)} abstract sentences of {len(papers)} papers")
    print(f"  cited to their own paper: {supported_own} supported ({supported_own / len(own_scores):.3f})")
    print(f"  cited to the nearest other paper: {wrongly} supported ({wrongly / len(other_scores):.3f}); "
          f"cited bar SUPPORTED_CITED = {SUPPORTED_CITED}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    files = [Path(arg) for arg in (argv if argv is not None else sys.argv[1:])] or SETS
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), model="fake")
        store = PaperStore(settings)
        ingest_paths([SAMPLE_COLLECTION], store=store)
        assistant = PaperAssistant(settings, store=store, backend=FakeLLM())
        rows = [
            measure(assistant, json.loads(line))
            for path in files
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        report(rows, settings)
        support_calibration(assistant)


if __name__ == "__main__":
    main()
