"""Context packing and the token budget next to the fixed prompt and the answer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.budget import context_budget, pack_context, safety_margin
from assistant.llm import FakeLLM


def test_keeps_rank_order_and_drops_lowest_ranked_first() -> None:
    result = pack_context(["a", "bb", "ccc", "dddd"], cost=len, budget=6)
    assert result.kept == ["a", "bb", "ccc"]
    assert result.dropped == ["dddd"]
    assert result.used_tokens == 6
    assert not result.all_kept


def test_smaller_lower_ranked_items_fill_the_room_a_large_one_leaves() -> None:
    result = pack_context(["aaaa", "bbbbbbbbbb", "cc"], cost=len, budget=7)
    assert result.kept == ["aaaa", "cc"]
    assert result.dropped == ["bbbbbbbbbb"]


def test_everything_fits_and_nothing_fits() -> None:
    assert pack_context([1, 2, 3], cost=lambda n: n, budget=100).all_kept
    nothing = pack_context([1, 2, 3], cost=lambda n: n, budget=0)
    assert nothing.kept == [] and nothing.dropped == [1, 2, 3]
    assert pack_context([], cost=len, budget=10).kept == []


def test_rejects_negative_budget_and_cost() -> None:
    with pytest.raises(ValueError, match="budget"):
        pack_context(["a"], cost=len, budget=-1)
    with pytest.raises(ValueError, match="cost"):
        pack_context(["a"], cost=lambda _: -3, budget=10)


# The machine has two busy cores: time limits would test the machine, not the code.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=500), max_size=30), st.integers(min_value=0, max_value=3000))
def test_never_overflows_and_loses_nothing(costs: list[int], budget: int) -> None:
    items = list(enumerate(costs))
    result = pack_context(items, cost=lambda item: item[1], budget=budget)
    assert sum(c for _, c in result.kept) == result.used_tokens <= budget
    assert sorted(result.kept + result.dropped) == items
    assert result.kept == sorted(result.kept)  # rank order preserved
    # A dropped item never fitted in the room left when it was considered.
    for index, item_cost in result.dropped:
        used_before = sum(c for i, c in result.kept if i < index)
        assert used_before + item_cost > budget


def test_context_budget_subtracts_fixed_answer_and_margin() -> None:
    backend = FakeLLM(window=4096)
    budget = context_budget(backend, fixed_messages_tokens=300, reserve_for_answer=400)
    assert budget == 4096 - 300 - 400 - safety_margin(4096)
    assert safety_margin(4096) == 204
    assert safety_margin(512) == 64


def test_context_budget_is_never_negative() -> None:
    backend = FakeLLM(window=1024)
    assert context_budget(backend, fixed_messages_tokens=900, reserve_for_answer=400) == 0
    with pytest.raises(ValueError):
        context_budget(backend, fixed_messages_tokens=-1, reserve_for_answer=0)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    window=st.integers(min_value=512, max_value=200_000),
    fixed=st.integers(min_value=0, max_value=250_000),
    answer=st.integers(min_value=0, max_value=20_000),
)
def test_budget_plus_fixed_plus_answer_fits_the_window(window: int, fixed: int, answer: int) -> None:
    budget = context_budget(FakeLLM(window=window), fixed_messages_tokens=fixed, reserve_for_answer=answer)
    assert budget >= 0
    if budget > 0:
        assert budget + fixed + answer + safety_margin(window) == window
