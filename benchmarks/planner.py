"""Route and shape accuracy of each planner against the labelled kind of every evaluation set.

    python benchmarks/planner.py [--planners rules,model] [--model local/qwen2.5-coder-1.5b-instruct] [FILES...]

Each question is resolved against the sample collection (which the sets are written for) and
planned as :meth:`PaperAssistant.plan` would, without retrieval: the planner's route and shape,
then the route the named papers allow (:func:`assistant.plan.routed_by_papers`). A labelled kind
expects a route and, for answers, a shape:

    lookup -> answer / one_paper     numeric -> answer / figure     multi -> answer / papers
    summary -> summary               compare -> comparison          unanswerable -> answer (any shape)

Prints, per planner, route accuracy (all questions), shape accuracy (lookup, numeric, multi),
the confusion matrix of kind against plan, and the seconds per plan. The model planner needs
the model's weights (``paper-assistant models``); run it with ``nice -n 10``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from assistant.features.compare import MAX_PAPERS, MIN_PAPERS
from assistant.llm import build_backend
from assistant.outcomes import Route, Shape
from assistant.plan import ModelPlanner, Planner, QueryPlan, RulesPlanner, routed_by_papers
from assistant.prompts import load_prompt
from assistant.resolve import resolve_papers
from assistant.schema import Paper
from assistant.settings import DEFAULT_LOCAL_MODEL, SAMPLE_COLLECTION, Settings
from ingestion.readers import read_path

ROOT = Path(__file__).resolve().parent.parent
SETS = [ROOT / "tests/data/dev.jsonl", ROOT / "benchmarks/data/heldout.jsonl", ROOT / "benchmarks/data/heldout2.jsonl"]
EXPECTED: dict[str, tuple[Route, Shape | None]] = {
    "lookup": (Route.ANSWER, Shape.ONE_PAPER),
    "numeric": (Route.ANSWER, Shape.FIGURE),
    "multi": (Route.ANSWER, Shape.PAPERS),
    "summary": (Route.SUMMARY, None),
    "compare": (Route.COMPARISON, None),
    "unanswerable": (Route.ANSWER, None),
}
COLUMNS = [
    *(f"answer/{shape.value}" for shape in Shape),
    Route.SUMMARY.value,
    Route.COMPARISON.value,
    Route.CLARIFICATION.value,
]


def label(plan: QueryPlan) -> str:
    return f"answer/{plan.shape.value}" if plan.route is Route.ANSWER else plan.route.value


def plan_of(question: str, planner: Planner, catalog: Sequence[Paper]) -> QueryPlan:
    resolution = resolve_papers(question, catalog)
    intent, _ = planner.intent(question, resolution.matched)
    plan = QueryPlan(
        message=question,
        route=intent.route,
        shape=intent.shape,
        named=resolution.matched,
        ambiguous=resolution.ambiguous,
        unknown=resolution.unknown,
        planner=planner.name,
    )
    return routed_by_papers(plan, (MIN_PAPERS, MAX_PAPERS))


def measure(planner: Planner, files: Sequence[Path], catalog: Sequence[Paper]) -> None:
    matrix: dict[str, Counter[str]] = {kind: Counter() for kind in EXPECTED}
    routes = shapes = shaped = total = 0
    seconds = 0.0
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            started = time.perf_counter()
            plan = plan_of(item["question"], planner, catalog)
            seconds += time.perf_counter() - started
            route, shape = EXPECTED[item["kind"]]
            matrix[item["kind"]][label(plan)] += 1
            total += 1
            routes += plan.route is route
            if shape is not None:
                shaped += 1
                shapes += plan.route is route and plan.shape is shape
    print(f"\n## {planner.name} planner: {total} questions from {', '.join(path.name for path in files)}")
    print(
        f"route accuracy {routes}/{total} = {routes / total:.2f}; shape accuracy {shapes}/{shaped} = {shapes / shaped:.2f}"
    )
    print(f"seconds per plan: {seconds / total:.4f}\n")
    print("| kind \\ plan | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for kind, counts in matrix.items():
        print(f"| {kind} | " + " | ".join(str(counts[column] or "") for column in COLUMNS) + " |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, default=SETS)
    parser.add_argument("--planners", default="rules", help="comma-separated: rules, model")
    parser.add_argument("--model", default=DEFAULT_LOCAL_MODEL, help="the model planner's model")
    args = parser.parse_args(argv)
    catalog = read_path(SAMPLE_COLLECTION).papers
    for name in args.planners.split(","):
        if name == "rules":
            measure(RulesPlanner(), args.files, catalog)
        elif name == "model":
            settings = Settings(model=args.model)
            measure(ModelPlanner(build_backend(settings), load_prompt("plan")), args.files, catalog)
        else:
            parser.error(f"unknown planner {name!r}: rules or model")


if __name__ == "__main__":
    main()
