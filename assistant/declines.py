"""Whether a model's reply declines: it says, in all it writes, that the sources do not answer.

Never a phrase inside an answer: "regions not covered by gradient descent [1]" is an answer.
"""

from __future__ import annotations

import re

from assistant.citations import strip_markers
from assistant.text import split_sentences

NOT_COVERED = "NOT COVERED"
"""The phrase the prompts ask a model to write when its sources do not answer."""

_REFUSAL_SENTENCE = re.compile(
    r"^\W*(?:not\s+covered|(?:the\s+)?(?:collection|sources?|excerpts?|abstracts?|papers?|context|texts?)\s+"
    r"(?:do|does|did)(?:\s+not|n['’]t)\s+(?:answer|cover|mention|say|contain|provide|state|discuss|address|report"
    r"|specify|include)\b[^.]*|no\s+(?:relevant\s+)?information\b[^.]*|(?:this|the)\s+question\s+cannot\s+be\s+"
    r"answered\b[^.]*|I\s+(?:do\s+not|don['’]t)\s+know\b[^.]*)\W*$",
    re.IGNORECASE,
)
_NOT_COVERED_LINE = re.compile(rf"^\W*{NOT_COVERED}\W*$", re.IGNORECASE | re.MULTILINE)


def declined(text: str) -> bool:
    """The model's whole reply declines: NOT COVERED, or only sentences saying the sources do not answer.

    Never a phrase inside an answer: "regions not covered by gradient descent [1]" is an answer.
    """
    sentences = [sentence for sentence in split_sentences(" ".join(text.split())) if sentence.strip()]
    return bool(sentences) and all(_REFUSAL_SENTENCE.match(strip_markers(sentence)) for sentence in sentences)


def without_decline(text: str) -> str:
    """A reply that answers and then also writes NOT COVERED, without that line: the answer stands."""
    return _NOT_COVERED_LINE.sub("", text).strip()
