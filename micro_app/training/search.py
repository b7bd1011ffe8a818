"""Hyperparameter search: the red deer algorithm (RDA) and random search, same budget.

The thesis' ODRNN tuned its recurrent network with RDA (Fathollahi-Fard, Hajiaghaei-Keshteli
and Tavakkoli-Moghaddam 2020, "Red deer algorithm (RDA): a new nature-inspired
meta-heuristic", Soft Computing 24:14637). Both searches minimise ``objective(params)``
over the unit box ``[0, 1]^dim`` that ``decode`` maps to hyperparameters; the budget counts
distinct decoded settings (a setting seen before is answered from the cache for free).

One RDA generation, minimising:
1. *Roaring*: each male moves to ``male +/- a1 * ((UB - LB) * a2 + LB)`` (sign by a3) and
   keeps the move if it is better.
2. The best ``gamma`` share of the males become *commanders*, the others *stags*.
3. *Fighting*: each commander fights a random stag; two new points
   ``(com + stag) / 2 +/- b1 * ((UB - LB) * b2 + LB)`` are made and the commander becomes
   the best of commander, stag and the two new points.
4. *Harems*: the hinds are dealt to the commanders in proportion to their normalised power
   ``|V_n / sum V|`` with ``V_n = cost_n - max cost``.
5. *Mating*: each commander mates with ``alpha`` of his own harem and with ``beta`` of
   another random harem, each stag with the nearest hind; offspring
   ``(a + b) / 2 + (UB - LB) * c``.
6. *Selection*: all males stay; the rest of the next population are the best of hinds
   and offspring.
a1, a2, a3, b1, b2 are uniform in [0, 1]. For c the paper's uniform [0, 1] would push
every offspring towards the upper bound of a box, so c is uniform in
``[-mating_step, mating_step]`` here (0.1 of the range by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Params = dict[str, Any]


class BudgetSpent(Exception):
    """The search has used its evaluation budget."""


@dataclass
class Trial:
    index: int
    params: Params
    loss: float
    x: list[float]


@dataclass
class SearchResult:
    method: str
    budget: int
    trials: list[Trial] = field(default_factory=list)

    @property
    def best(self) -> Trial:
        return min(self.trials, key=lambda t: t.loss)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "method": self.method,
            "budget": self.budget,
            "evaluations": len(self.trials),
            "best_params": best.params,
            "best_loss": best.loss,
            "trials": [{"index": t.index, "params": t.params, "loss": t.loss} for t in self.trials],
        }


class Objective:
    """Counts and caches ``fn(decode(x))``; raises ``BudgetSpent`` past the budget."""

    def __init__(
        self,
        fn: Callable[[Params], float],
        decode: Callable[[np.ndarray], Params],
        budget: int,
        method: str,
    ) -> None:
        if not isinstance(budget, int) or budget < 1:
            raise ValueError(f"search budget must be a positive integer, got {budget!r}")
        self.fn, self.decode = fn, decode
        self.result = SearchResult(method, budget)
        self._cache: dict[str, float] = {}

    def __call__(self, x: np.ndarray) -> float:
        params = self.decode(np.clip(x, 0.0, 1.0))
        key = repr(sorted(params.items()))
        if key in self._cache:
            return self._cache[key]
        if len(self.result.trials) >= self.result.budget:
            raise BudgetSpent
        loss = float(self.fn(params))
        loss = loss if np.isfinite(loss) else float("inf")
        self._cache[key] = loss
        self.result.trials.append(Trial(len(self.result.trials), params, loss, x.tolist()))
        return loss


def random_search(
    fn: Callable[[Params], float],
    decode: Callable[[np.ndarray], Params],
    dim: int,
    budget: int,
    seed: int = 0,
    max_draws: int = 10000,
) -> SearchResult:
    obj = Objective(fn, decode, budget, "random")
    rng = np.random.default_rng(seed)
    try:
        for _ in range(max_draws):
            obj(rng.random(dim))
    except BudgetSpent:
        pass
    return obj.result


def red_deer_search(
    fn: Callable[[Params], float],
    decode: Callable[[np.ndarray], Params],
    dim: int,
    budget: int,
    seed: int = 0,
    *,
    population: int | None = None,
    males: int | None = None,
    gamma: float = 0.5,
    alpha: float = 0.5,
    beta: float = 0.2,
    mating_step: float = 0.1,
    max_generations: int = 200,
) -> SearchResult:
    """The red deer algorithm on the unit box; see the module docstring for the steps."""
    obj = Objective(fn, decode, budget, "rda")
    rng = np.random.default_rng(seed)
    n_pop = population or int(np.clip(budget // 3, 4, 30))
    n_male = males or max(2, round(0.25 * n_pop))
    if not 2 <= n_male < n_pop:
        raise ValueError(f"RDA needs 2 <= males < population, got {n_male} of {n_pop}")
    lb, ub = np.zeros(dim), np.ones(dim)
    try:
        pop = [rng.random(dim) for _ in range(n_pop)]
        cost = [obj(x) for x in pop]
        for _ in range(max_generations):
            order = np.argsort(cost)
            pop, cost = [pop[i] for i in order], [cost[i] for i in order]
            male_x, male_c = pop[:n_male], cost[:n_male]
            hind_x, hind_c = pop[n_male:], cost[n_male:]
            # 1. roaring
            for i in range(n_male):
                a1, a2, a3 = rng.random(3)
                step = a1 * ((ub - lb) * a2 + lb)
                new = np.clip(male_x[i] + step if a3 >= 0.5 else male_x[i] - step, lb, ub)
                c_new = obj(new)
                if c_new < male_c[i]:
                    male_x[i], male_c[i] = new, c_new
            # 2. commanders and stags
            order = np.argsort(male_c)
            male_x, male_c = [male_x[i] for i in order], [male_c[i] for i in order]
            n_com = max(1, min(n_male - 1, round(gamma * n_male)))
            com_x, com_c = male_x[:n_com], male_c[:n_com]
            stag_x, stag_c = male_x[n_com:], male_c[n_com:]
            # 3. fighting
            for i in range(n_com):
                j = int(rng.integers(len(stag_x)))
                b1, b2 = rng.random(2)
                mid, step = (com_x[i] + stag_x[j]) / 2, b1 * ((ub - lb) * b2 + lb)
                cands = [com_x[i], stag_x[j], np.clip(mid + step, lb, ub)]
                cands.append(np.clip(mid - step, lb, ub))
                costs = [com_c[i], stag_c[j], obj(cands[2]), obj(cands[3])]
                k = int(np.argmin(costs))
                com_x[i], com_c[i] = cands[k], costs[k]
            # 4. harems
            power = np.array(com_c) - max(com_c)
            share = np.abs(power / power.sum()) if power.sum() != 0 else np.full(n_com, 1 / n_com)
            sizes = np.floor(share * len(hind_x)).astype(int)
            for k in np.argsort(-share)[: len(hind_x) - sizes.sum()]:
                sizes[k] += 1
            perm = rng.permutation(len(hind_x))
            harems = np.split(perm, np.cumsum(sizes)[:-1])

            def mate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
                c = rng.uniform(-mating_step, mating_step, dim)
                return np.clip((a + b) / 2 + (ub - lb) * c, lb, ub)

            kids: list[np.ndarray] = []
            # 5. mating: commanders in their own harem, then in another harem
            for i in range(n_com):
                mates = harems[i][: round(alpha * len(harems[i]))]
                kids += [mate(com_x[i], hind_x[h]) for h in mates]
                if n_com > 1:
                    k = int(rng.choice([m for m in range(n_com) if m != i]))
                    other = rng.permutation(harems[k])[: round(beta * len(harems[k]))]
                    kids += [mate(com_x[i], hind_x[h]) for h in other]
            #    stags with the nearest hind
            for s in stag_x:
                if hind_x:
                    h = int(np.argmin([np.linalg.norm(s - hx) for hx in hind_x]))
                    kids.append(mate(s, hind_x[h]))
            kid_c = [obj(x) for x in kids]
            # 6. selection: males stay, the best of hinds and offspring fill the rest
            rest_x, rest_c = hind_x + kids, hind_c + kid_c
            best = np.argsort(rest_c)[: n_pop - n_male]
            pop = com_x + stag_x + [rest_x[i] for i in best]
            cost = com_c + stag_c + [rest_c[i] for i in best]
    except BudgetSpent:
        pass
    return obj.result
