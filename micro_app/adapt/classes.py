"""Classes a lab adds to its model from its own cells: blasts first.

The default model knows the eight classes of healthy blood in PBC; the thesis behind the
app is about leukaemia, and a lab sees blasts, plasma cells, smudge cells, artefacts and
reactive lymphocytes that no public data set here has. A lab adds such a class by name
with a few of its own cells (the set-up grid, the teach view, or a class folder given to
``micro-app adapt --labels``); teaching grows the network's last layer by one output per
new class (``grow_head``), initialised from the mean features of the class's cells
("weight imprinting", Qi et al. 2018), and trains it with the rest.

A class name is checked before anything is written: a folder called ``Neutrophils`` must
not silently become a ninth class beside ``neutrophil``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from micro_app.core.errors import InputError

# offered in the set-up grid and the teach view, the first one by default
SUGGESTED = ("blast", "plasma cell", "smudge cell", "artefact", "reactive lymphocyte")
RESERVED = ("unidentified", "unclassified", "atypical", "not a white cell")
MIN_NEW_CLASS_CELLS = 3  # training cells a new class needs before it is taught
MAX_NAME = 40


def canonical(name: str) -> str:
    """How a class is named in the card: lower case, single spaces."""
    return re.sub(r"\s+", " ", name.strip().lower().replace("_", " "))


def check_new_class(name: str, known: tuple[str, ...]) -> str:
    """The canonical name of a class to add; a one-line error when it cannot be one."""
    c = canonical(name)
    if not c or len(c) > MAX_NAME or not re.fullmatch(r"[a-z0-9][a-z0-9 ()+.\-]*", c):
        raise InputError(
            f"{name!r} cannot be a class name: use letters, digits and spaces "
            f"(at most {MAX_NAME} characters), e.g. 'blast' or 'plasma cell'"
        )
    if c in RESERVED:
        raise InputError(f"{name!r} is a word the app uses itself: choose another class name")
    for k in known:
        if c == k:
            return k
        if _alike(c, k):
            raise InputError(
                f"{name!r} looks like the model's class {k!r}: use {k!r} for those cells "
                "(rename the folder), or a clearly different name for a new class"
            )
    return c


def _alike(a: str, b: str) -> bool:
    """The same name but for spaces or a plural ending ("Neutrophils", "plasma cells")."""
    a, b = canonical(a).replace(" ", ""), canonical(b).replace(" ", "")
    return a == b or a in (b + "s", b + "es") or b in (a + "s", a + "es")


def split_known(labels: list[str], known: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """The classes after teaching (``known`` then new ones, in order of first appearance)
    and each label in canonical form; raises on a name that cannot be a class."""
    out: list[str] = []
    added: list[str] = []
    for label in labels:
        c = check_new_class(label, known + tuple(added))
        if c not in known and c not in added:
            added.append(c)
        out.append(c)
    return known + tuple(added), out


def grow_head(model: Any, n_new: int, new_features: list[np.ndarray]) -> Any:
    """``model`` with ``n_new`` more outputs on its ``predictions`` layer (a new Keras model
    sharing every other layer). Each new output's weights are imprinted: the mean of the
    class's (L2-normalised) features scaled to the old outputs' mean weight norm, its bias
    the old outputs' lowest, so that it starts as a modest, not a dominant, answer."""
    import keras

    if n_new <= 0:
        return model
    old = model.get_layer("predictions")
    kernel, bias = (np.asarray(w) for w in old.get_weights())
    norms = np.linalg.norm(kernel, axis=0)
    columns = []
    for feats in new_features:
        f = np.asarray(feats, np.float32).reshape(len(feats), -1)
        direction = f.mean(axis=0) if len(f) else np.zeros(kernel.shape[0], np.float32)
        n = np.linalg.norm(direction)
        columns.append(direction / n * norms.mean() if n > 0 else direction)
    new_kernel = np.concatenate([kernel, np.stack(columns, axis=1)], axis=1)
    new_bias = np.concatenate([bias, np.full(n_new, bias.min(), np.float32)])
    head = keras.layers.Dense(kernel.shape[1] + n_new, activation="softmax", name="predictions")
    out = head(old.input)
    grown = keras.Model(model.inputs, out, name=model.name)
    head.set_weights([new_kernel.astype(np.float32), new_bias.astype(np.float32)])
    return grown
