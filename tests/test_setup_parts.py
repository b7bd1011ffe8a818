"""The set-up's building blocks, each on fixed arrays: the calibration guard, the paired
verdict, the teaching order, class names a lab adds, the per-source unlike check, the
fine-tuning plan and its fitness check, the pseudo-label views and the blast alert."""

from __future__ import annotations

import numpy as np
import pytest

from micro_app.adapt.classes import check_new_class, split_known
from micro_app.adapt.guard import normalisation_check
from micro_app.adapt.pseudo import views
from micro_app.adapt.scoring import compare, score_probs, sign_test, verdict
from micro_app.adapt.select import doubt, grid_order, teaching_order
from micro_app.core.appearance import FEATURES, Appearance, AppearanceStats, fit_source
from micro_app.core.errors import InputError
from micro_app.core.slide import watch_message
from micro_app.training.finetune import fitness, plan

CLASSES = ("eosinophil", "lymphocyte", "neutrophil")


def _probs(top: list[int], sure: float, n_classes: int = 3) -> np.ndarray:
    p = np.full((len(top), n_classes), (1 - sure) / (n_classes - 1))
    p[np.arange(len(top)), top] = sure
    return p


# -- the calibration guard ------------------------------------------------------------------
def test_calibration_that_makes_the_model_less_sure_and_changes_half_its_answers_is_refused() -> (
    None
):
    before = _probs([2] * 60 + [0] * 30 + [1] * 10, 0.92)
    # the BCCD case: half the answers changed, mean confidence 0.92 -> 0.79
    after = _probs([2] * 30 + [1] * 30 + [0] * 30 + [1] * 10, 0.79)
    r = normalisation_check(before, after, CLASSES)
    assert r["keep"] is False and r["agreement"] == 0.7
    assert "less sure" in r["reason"] and "0.92 -> 0.79" in r["reason"]
    assert r["class_mix_after"]["lymphocyte"] == 0.4


def test_calibration_that_changes_little_or_makes_the_model_surer_is_kept() -> None:
    before = _probs([2] * 95 + [0] * 5, 0.9)
    assert normalisation_check(before, _probs([2] * 100, 0.85), CLASSES)["keep"] is True
    # many answers change, but the model is surer of this microscope's cells: kept
    before = _probs([2] * 50 + [0] * 50, 0.6)
    r = normalisation_check(before, _probs([2] * 80 + [1] * 20, 0.9), CLASSES)
    assert r["keep"] is True and "surer" in r["reason"]


# -- the verdict ----------------------------------------------------------------------------
def test_the_verdict_is_a_paired_test_and_never_calls_a_handful_of_cells() -> None:
    assert sign_test(0, 0) == 1.0 and sign_test(5, 0) == pytest.approx(0.0625)
    # four held-back cells: one lost reads as "too few to tell", not as "worse"
    few = compare(np.array([True, True, False, True]), np.array([True, False, False, True]))
    assert verdict(few).startswith("too few held-back cells to tell")
    right = np.zeros(27, bool)
    right[:14] = True
    gained = right.copy()
    gained[14:20] = True
    assert verdict(compare(right, gained)).startswith("better: 6 more of the 27")
    lost = right.copy()
    lost[:1] = False
    assert verdict(compare(right, lost)).startswith("no clear difference")
    worse = right.copy()
    worse[:6] = False
    w = verdict(compare(right, worse))
    assert w.startswith("worse: 6 fewer of the 27") and "keep the current model" in w
    assert verdict({"cells": 0, "gained": 0, "lost": 0}).startswith("not measured")


def test_scores_count_a_class_the_model_lacks_as_never_right() -> None:
    probs = _probs([2, 2, 0], 0.95)  # the old model has 3 outputs; class 3 is "blast"
    s = score_probs(probs, np.array([2, 3, 0]), (*CLASSES, "blast"), 0.8)
    assert s["accuracy"] == pytest.approx(2 / 3, abs=1e-3) and s["recall"]["blast"] == 0.0


# -- the teaching order ---------------------------------------------------------------------
def test_the_grid_shows_each_class_with_the_typical_cell_of_each_kind_first() -> None:
    rng = np.random.default_rng(0)
    # one suggested class that comes in two kinds (30 and 10 cells), plus one odd cell
    a = np.array([1.0, 0.0, 0.0]) + rng.normal(0, 0.02, (30, 3))
    b = np.array([0.0, 1.0, 0.0]) + rng.normal(0, 0.02, (10, 3))
    odd = np.array([[0.0, 0.0, 1.0]])
    feats = np.concatenate([a, b, odd])
    probs = _probs([0] * 41, 0.9)
    probs[40] = [0.5, 0.45, 0.05]  # the odd cell is also the most doubtful
    assert doubt(probs)[40] == pytest.approx(0.95)
    order = teaching_order(feats, wanted=2)
    # first the typical cell of the big kind, then of the small one; never the odd one
    assert order[0] < 30 and 30 <= order[1] < 40 and order[-1] == 40
    assert sorted(order.tolist()) == list(range(41))
    # the grid: grouped by suggested class, in class order
    probs2 = np.concatenate([_probs([2] * 3, 0.9), probs])
    feats2 = np.concatenate([feats[:3], feats])
    grid = grid_order(probs2, feats2, wanted=2)
    assert sorted(grid.tolist()) == list(range(44)) and set(grid[:41]) == set(range(3, 44))
    # without features: the surest first within a class
    assert grid_order(_probs([0, 0], 0.9) * [[1], [0.5]], None, 2).tolist() == [0, 1]
    assert len(teaching_order(feats[:0], 2)) == 0


# -- classes a lab adds ---------------------------------------------------------------------
def test_a_new_class_name_is_checked_before_anything_is_written() -> None:
    assert check_new_class("Blast", CLASSES) == "blast"
    assert check_new_class("plasma_cell", CLASSES) == "plasma cell"
    assert check_new_class("Neutrophil", CLASSES) == "neutrophil"  # a known class
    with pytest.raises(InputError, match="looks like the model's class 'neutrophil'"):
        check_new_class("neutrophils", CLASSES)
    with pytest.raises(InputError, match="uses itself"):
        check_new_class("unidentified", CLASSES)
    with pytest.raises(InputError, match="cannot be a class name"):
        check_new_class("../blast", CLASSES)
    classes, labels = split_known(["neutrophil", "Blast", "blast", "smudge cell"], CLASSES)
    assert classes == (*CLASSES, "blast", "smudge cell")
    assert labels == ["neutrophil", "blast", "blast", "smudge cell"]


def test_a_grown_head_keeps_the_old_outputs_and_imprints_the_new_one() -> None:
    keras = pytest.importorskip("keras")
    from micro_app.adapt.classes import grow_head

    inp = keras.Input((4,))
    feats = keras.layers.Dense(3, name="features")(inp)
    out = keras.layers.Dense(2, activation="softmax", name="predictions")(feats)
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    grown = grow_head(model, 1, [np.array([[0.0, 0.0, 3.0], [0.0, 0.0, 1.0]])])
    assert grown.output_shape[-1] == 3
    k_old, b_old = model.get_layer("predictions").get_weights()
    k_new, b_new = grown.get_layer("predictions").get_weights()
    assert np.allclose(k_new[:, :2], k_old) and np.allclose(b_new[:2], b_old)
    column = k_new[:, 2]
    assert column[2] > 0 and np.allclose(column[:2], 0)  # along the class's mean features
    assert np.isclose(np.linalg.norm(column), np.linalg.norm(k_old, axis=0).mean())
    assert grown(x).shape == (5, 3)


# -- the unlike check per training source ---------------------------------------------------
def _source(centre: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return centre + rng.normal(size=(n, len(FEATURES))) * np.array(
        [2, 1, 1, 1, 0.5, 0.5, 2, 1, 1, 0.01]
    )


def test_a_cell_like_any_one_training_source_is_not_unlike() -> None:
    pbc, bccd, other = _source(0, 400, 0), _source(8, 120, 1), _source(-8, 50, 2)
    one = Appearance.single("PBC", AppearanceStats.fit(pbc[:300], pbc[300:]))
    assert one.shares(bccd)["unlike"] == 1.0
    both = one.with_source("BCCD", fit_source(bccd))
    shares = both.shares(np.concatenate([pbc[300:], bccd]))
    assert shares["unlike"] <= 0.1 and set(shares) == {"PBC", "BCCD", "unlike"}
    assert both.shares(other)["unlike"] == 1.0  # a camera it has never seen
    # after that camera's set-up its cells are like a source too; set up again: replaced
    lab = both.with_source("set-up: scope 1", fit_source(other[:30]))
    assert lab.shares(other[30:])["unlike"] <= 0.2
    again = lab.with_source("set-up: scope 1", fit_source(other))
    assert again.names == ("PBC", "BCCD", "set-up: scope 1")
    back = Appearance.from_dict(again.to_dict())
    assert back.names == again.names
    assert np.allclose(back.scores(other), again.scores(other), atol=1e-4)
    # a card from before sources: one population, read as one source
    old = Appearance.from_dict(one.sources[0][1].to_dict())
    assert old.names == ("training images",)


# -- fine-tuning: the plan and "not fit to use" ---------------------------------------------
def test_pretrained_weights_get_a_warm_up_that_is_never_judged() -> None:
    stages = plan(True, 30, 1e-3, warmup_epochs=3)
    assert [(s.name, s.epochs, s.judged) for s in stages] == [
        ("warm-up", 3, False),
        ("fine-tune", 27, True),
    ]
    assert stages[1].learning_rate == pytest.approx(3e-4)
    assert [s.name for s in plan(False, 30, 1e-3)] == ["train"]
    assert [s.name for s in plan(True, 30, 1e-3, warmup_epochs=0)] == ["train"]


def test_a_kept_model_near_chance_or_far_below_training_is_not_fit() -> None:
    history = {"accuracy": [0.41, 0.93], "val_accuracy": [0.19, 0.54]}
    bad = fitness(history, 0, 8)
    assert bad is not None and bad["fit"] is False
    assert "near chance" in bad["problems"][0]
    gap = fitness(history, 1, 8)
    assert gap is not None and gap["fit"] is False and "far below" in gap["problems"][0]
    good = fitness({"accuracy": [0.95], "val_accuracy": [0.9]}, 0, 8)
    assert good is not None and good["fit"] is True
    assert fitness({"loss": [1.0]}, 0, 8) is None


# -- pseudo-labels and the blast alert ------------------------------------------------------
def test_pseudo_labels_look_at_five_views_of_each_cell() -> None:
    x = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    v = views(x)
    assert len(v) == 5 and all(a.shape == x.shape for a in v)
    assert np.array_equal(v[2], x[:, ::-1, ::-1])  # turned by 180 degrees


def test_blasts_above_their_share_ask_for_a_referral() -> None:
    assert watch_message("blast", 2, 100, 0.01) == "2 blasts in 100 cells: refer for review"
    assert watch_message("blast", 1, 50, 0.01) == "1 blast in 50 cells: refer for review"
    assert watch_message("ig", 6, 100, 0.05) == "ig: 6.0% of 100 cells, above the 5% alert"


def test_pseudo_labels_keep_sure_cells_and_never_a_held_back_one() -> None:
    keras = pytest.importorskip("keras")
    from micro_app.adapt.pseudo import mix_weights, pseudo_label
    from micro_app.core.models.card import ModelCard

    inp = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D(name="features")(inp)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out)
    model.get_layer("predictions").set_weights([np.eye(3, dtype=np.float32) * 20, np.zeros(3)])
    card = ModelCard(name="t", version="1", classes=CLASSES, input_size=(8, 8))

    def cells(colour: tuple[int, int, int], n: int) -> np.ndarray:
        return np.tile(np.array(colour, np.uint8), (n, 8, 8, 1))

    red, green, grey = cells((230, 20, 20), 6), cells((20, 230, 20), 3), cells((120, 120, 120), 2)
    red[:, 0, 0] = np.arange(6)[:, None]  # six distinct red cells
    pool = np.concatenate([red, green, grey])
    got = pseudo_label(
        model,
        card,
        pool,
        0.8,
        labelled=red[:1],
        labelled_classes=np.array([0]),
        new_classes=set(),
        held_back=red[1:2],
    )
    # the labelled and the held-back red cells are left out; the grey ones are unsure
    assert got.offered == 9 and len(got.labels) == 7
    assert sorted(got.labels.tolist()) == [0, 0, 0, 0, 1, 1, 1]
    assert not any(np.array_equal(x, red[1]) for x in got.images)
    # a pool that is mostly one class weighs that class up, within a factor of four
    w = mix_weights(np.array([[0.9, 0.05, 0.05]] * 9 + [[0.05, 0.9, 0.05]]))
    assert w[0] > 1 > w[1] and w.max() <= 4 and w.min() >= 0.25
