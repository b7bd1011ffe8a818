"""The red deer algorithm and random search on a cheap objective, same budget."""

from __future__ import annotations

import numpy as np
import pytest

from micro_app.training.search import random_search, red_deer_search

OPTIMUM = np.array([0.3, 0.7, 0.55])


def _fn(params: dict[str, object]) -> float:
    return float(((np.array(params["x"]) - OPTIMUM) ** 2).sum())


def _decode(x: np.ndarray) -> dict[str, object]:
    return {"x": tuple(np.round(x, 3).tolist())}


def test_both_searches_spend_exactly_the_budget() -> None:
    for search in (red_deer_search, random_search):
        result = search(_fn, _decode, 3, 25, 0)
        assert len(result.trials) == 25
        d = result.to_dict()
        assert d["evaluations"] == 25 and d["best_loss"] == min(t.loss for t in result.trials)


def test_red_deer_beats_random_search_on_a_smooth_bowl() -> None:
    rda = [red_deer_search(_fn, _decode, 3, 80, s).best.loss for s in range(5)]
    rnd = [random_search(_fn, _decode, 3, 80, s).best.loss for s in range(5)]
    assert np.mean(rda) < np.mean(rnd)
    assert min(rda) < 0.01


def test_repeated_settings_cost_nothing() -> None:
    calls: list[object] = []

    def fn(params: dict[str, object]) -> float:
        calls.append(params)
        return float(params["k"])  # type: ignore[arg-type]

    result = random_search(fn, lambda x: {"k": int(x[0] * 3)}, 1, 10, 0, max_draws=200)
    assert len(calls) == len(result.trials) == 3  # only three distinct settings exist


def test_rda_needs_a_sensible_herd() -> None:
    with pytest.raises(ValueError, match="males"):
        red_deer_search(_fn, _decode, 3, 10, 0, population=4, males=4)
