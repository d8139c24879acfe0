"""How many hand-written rules steer the answer flow: regular expressions, numeric cutoffs, word lists.

    python -m benchmarks.rules [REV ...]     (default: HEAD; e.g. de4ffad HEAD for before and after)

Reads the answer flow's modules at each git revision (a module absent at a revision is
skipped) and counts, by their syntax tree:

- regular expressions: calls of ``re.compile`` (and ``re.search``/``re.match``/``re.sub``/
  ``re.fullmatch``/``re.split``/``re.findall`` with a literal pattern);
- named cutoffs: module-level UPPER_CASE names bound to a number other than 0 and 1;
- unnamed cutoffs: comparisons with a literal number other than 0 and 1 inside functions;
- settings: numeric fields of ``AnswerSettings`` (cutoffs that moved to ``Settings``, with their
  calibration in ``benchmarks/calibrate.py``), counted apart;
- word lists: module-level sets, frozensets, tuples or lists of three or more string literals, and
  module-level pattern fragments that are an alternation of three or more words
  (``_PAPER_NOUN = r"(?:paper|work|method...)"``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOW = [
    "assistant/service.py",
    "assistant/plan.py",
    "assistant/outcomes.py",
    "assistant/features/answer.py",
    "assistant/grounding.py",
    "assistant/support.py",
    "assistant/settling.py",
    "assistant/scrubbing.py",
    "assistant/declines.py",
    "assistant/evidence.py",
    "assistant/coverage.py",
]
_RE_CALLS = {"compile", "search", "match", "fullmatch", "sub", "split", "findall"}


def source_at(rev: str, path: str) -> str | None:
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=False)
    return shown.stdout if shown.returncode == 0 else None


def _number(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
        and node.value not in (0, 1)
    )


def _strings(node: ast.AST) -> int:
    if isinstance(node, ast.Call):  # frozenset({...}); not re.compile(...), counted as a regular expression
        named = isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set", "tuple", "list")
        return _strings(node.args[0]) if named and node.args else 0
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a pattern fragment: words | words
        return node.value.count("|") + 1 if node.value.count("|") >= 2 else 0
    items = list(node.elts) if isinstance(node, ast.Set | ast.Tuple | ast.List) else []
    return sum(isinstance(item, ast.Constant) and isinstance(item.value, str) for item in items)


def count(tree: ast.Module) -> dict[str, int]:
    counts = dict.fromkeys(["regular expressions", "named cutoffs", "unnamed cutoffs", "settings", "word lists"], 0)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "re"
            and node.func.attr in _RE_CALLS
            and node.args
            and (node.func.attr == "compile" or isinstance(node.args[0], ast.Constant | ast.JoinedStr))
        ):
            counts["regular expressions"] += 1
    for statement in tree.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names = [target.id for target in targets if isinstance(target, ast.Name)]
            if any(name.isupper() or name.lstrip("_").isupper() for name in names):
                if _number(statement.value):
                    counts["named cutoffs"] += 1
                elif _strings(statement.value) >= 3:
                    counts["word lists"] += 1
        if isinstance(statement, ast.FunctionDef | ast.ClassDef):
            for node in ast.walk(statement):
                if isinstance(node, ast.Compare) and any(_number(side) for side in [node.left, *node.comparators]):
                    counts["unnamed cutoffs"] += 1
    return counts


def settings_cutoffs(rev: str) -> int:
    text = source_at(rev, "assistant/settings.py") or ""
    tree = ast.parse(text)
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef) and statement.name == "AnswerSettings":
            return sum(
                isinstance(item, ast.AnnAssign)
                and isinstance(item.annotation, ast.Name)
                and item.annotation.id == "float"
                for item in statement.body
            )
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    revs = list(argv if argv is not None else sys.argv[1:]) or ["HEAD"]
    print("| revision | files | regular expressions | named cutoffs | unnamed cutoffs | word lists | answer settings |")
    print("|---|---|---|---|---|---|---|")
    for rev in revs:
        total = dict.fromkeys(["regular expressions", "named cutoffs", "unnamed cutoffs", "word lists"], 0)
        files = 0
        for path in FLOW:
            text = source_at(rev, path)
            if text is None:
                continue
            files += 1
            for key, value in count(ast.parse(text)).items():
                if key in total:
                    total[key] += value
        print(
            f"| {rev} | {files} | {total['regular expressions']} | {total['named cutoffs']} | "
            f"{total['unnamed cutoffs']} | {total['word lists']} | {settings_cutoffs(rev)} |"
        )


if __name__ == "__main__":
    main()
