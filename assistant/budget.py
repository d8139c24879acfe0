"""Token budgeting: how much context fits next to the fixed prompt and the answer.

Token counts for models whose tokenizer we do not have are cl100k_base estimates, so
every budget keeps a safety margin below the real window instead of filling it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from assistant.llm import LLMBackend

T = TypeVar("T")

MIN_SAFETY_MARGIN_TOKENS = 64
SAFETY_MARGIN_FRACTION = 0.05


@dataclass(frozen=True)
class PackResult(Generic[T]):
    """Items that fit the budget (in rank order), the ones left out, and the tokens used."""

    kept: list[T] = field(default_factory=list)
    dropped: list[T] = field(default_factory=list)
    used_tokens: int = 0
    budget: int = 0

    @property
    def all_kept(self) -> bool:
        return not self.dropped


def pack_context(items: Sequence[T], *, cost: Callable[[T], int], budget: int) -> PackResult[T]:
    """Keep items in rank order while they fit in ``budget`` tokens.

    Items are taken best-ranked first; one that no longer fits is dropped and smaller,
    lower-ranked ones may still fill the room left, so a lower-ranked item is never kept
    at the expense of a higher-ranked one. ``cost`` must include any per-item overhead
    (fence tags, separators) so that the sum of kept costs is what the prompt really spends.
    """
    if budget < 0:
        raise ValueError(f"budget must not be negative, got {budget}")
    kept: list[T] = []
    dropped: list[T] = []
    used = 0
    for item in items:
        item_cost = cost(item)
        if item_cost < 0:
            raise ValueError(f"cost must not be negative, got {item_cost} for {item!r}")
        if used + item_cost <= budget:
            kept.append(item)
            used += item_cost
        else:
            dropped.append(item)
    return PackResult(kept=kept, dropped=dropped, used_tokens=used, budget=budget)


def safety_margin(window: int) -> int:
    """Tokens held back because counts are estimates (other tokenizers, chat-template overhead)."""
    return max(MIN_SAFETY_MARGIN_TOKENS, int(window * SAFETY_MARGIN_FRACTION))


def context_budget(backend: LLMBackend, *, fixed_messages_tokens: int, reserve_for_answer: int) -> int:
    """Tokens left for retrieved context: window - fixed prompt - answer reserve - margin, never negative."""
    if fixed_messages_tokens < 0 or reserve_for_answer < 0:
        raise ValueError("fixed_messages_tokens and reserve_for_answer must not be negative")
    window = backend.context_window()
    return max(0, window - fixed_messages_tokens - reserve_for_answer - safety_margin(window))


# --- questions --------------------------------------------------------------------------------
def question_token_limit(backend: LLMBackend) -> int:
    """The longest question sent on: an eighth of the window leaves the rest to the sources and answer."""
    return max(64, backend.context_window() // 8)


def fit_question(question: str, backend: LLMBackend) -> tuple[str, str | None]:
    """``question`` cut to what the prompt has room for, with a notice when it was cut."""
    limit = question_token_limit(backend)
    total = tokens = backend.count_tokens(question)
    kept = question
    # Shrink by the overshoot's share of characters: two or three counts, whatever the tokenizer.
    while tokens > limit:
        kept = kept[: max(1, int(len(kept) * limit / tokens * 0.95))]
        tokens = backend.count_tokens(kept)
    if kept == question:
        return question, None
    if " " in kept[len(kept) // 2 :]:
        kept = kept.rsplit(" ", 1)[0]
    notice = f"Your message was cut to its first {backend.count_tokens(kept)} tokens (of {total}) to fit the model's context."
    return kept, notice
