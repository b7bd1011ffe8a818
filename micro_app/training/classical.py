"""Features plus classical classifiers (the thesis' first transfer-learning model and the
five-subtype paper): SVM with linear, Gaussian and cubic kernels, k-NN with k = 1, linear
discriminant analysis and a decision tree, fitted with scikit-learn on standardised CNN
features, scored with stratified 10-fold cross-validation, and converted to a
``ClassicalHead`` (plain arrays, no pickle) that the app runs in numpy.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from micro_app.core.errors import SettingsError
from micro_app.core.models.classical import ClassicalHead

HEADS = ("svm_linear", "svm_gaussian", "svm_cubic", "knn1", "lda", "tree")


def make_estimator(name: str, seed: int = 0) -> Any:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    if name == "svm_linear":
        return SVC(kernel="linear", probability=True, random_state=seed)
    if name == "svm_gaussian":
        return SVC(kernel="rbf", gamma="scale", probability=True, random_state=seed)
    if name == "svm_cubic":
        return SVC(
            kernel="poly", degree=3, gamma="scale", coef0=1.0, probability=True, random_state=seed
        )
    if name == "knn1":
        return KNeighborsClassifier(n_neighbors=1)
    if name == "lda":
        return LinearDiscriminantAnalysis(solver="svd")
    if name == "tree":
        return DecisionTreeClassifier(random_state=seed)
    raise SettingsError(f"unknown classical head {name!r}; choose one of {', '.join(HEADS)}")


def cross_validate(
    features: np.ndarray, labels: np.ndarray, names: list[str], folds: int = 10, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Stratified ``folds``-fold accuracy of each head (standardisation fitted per fold)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = int(np.bincount(labels).min())
    k = min(folds, smallest)
    if k < 2:
        raise SettingsError(
            f"{folds}-fold cross-validation needs 2+ images of every class, the smallest class "
            f"has {smallest}: add images or choose fewer classes"
        )
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        pipe = make_pipeline(StandardScaler(), make_estimator(name, seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            scores = cross_val_score(pipe, features, labels, cv=cv, scoring="accuracy")
        out[name] = {
            "folds": k,
            "accuracy_mean": float(scores.mean()),
            "accuracy_std": float(scores.std()),
            "fold_accuracy": [float(s) for s in scores],
        }
    return out


def fit_head(
    name: str, features: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], seed: int = 0
) -> tuple[ClassicalHead, Any]:
    """Fit one head on all given features; returns the head and the scikit-learn pipeline."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features)
    with warnings.catch_warnings():
        # SVC(probability=True) is deprecated in scikit-learn 1.9 (pinned below 1.11)
        warnings.simplefilter("ignore", FutureWarning)
        est = make_estimator(name, seed).fit(scaler.transform(features), labels)
    if len(est.classes_) != len(classes):
        raise SettingsError(
            f"every class needs training images for a classical head; got {len(est.classes_)} "
            f"of {len(classes)}"
        )
    return to_head(est, scaler, classes), (scaler, est)


def to_head(est: Any, scaler: Any, classes: tuple[str, ...]) -> ClassicalHead:
    """Plain arrays of a fitted scikit-learn estimator (SVC, 1-NN, LDA, decision tree)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    mean = np.asarray(scaler.mean_, np.float64)
    scale = np.asarray(scaler.scale_, np.float64)
    if isinstance(est, SVC):
        # libsvm's own sign convention: scikit-learn flips the public binary attributes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            prob_a, prob_b = est.probA_, est.probB_
        return ClassicalHead(
            kind="svm",
            classes=classes,
            mean=mean,
            scale=scale,
            arrays={
                "support_vectors": np.asarray(est.support_vectors_, np.float64),
                "dual_coef": np.asarray(est._dual_coef_, np.float64),
                "intercept": np.asarray(est._intercept_, np.float64),
                "n_support": np.asarray(est.n_support_, np.int64),
                "prob_a": np.asarray(prob_a, np.float64),
                "prob_b": np.asarray(prob_b, np.float64),
            },
            params={
                "kernel": est.kernel,
                "gamma": float(est._gamma),
                "coef0": float(est.coef0),
                "degree": int(est.degree),
            },
        )
    if isinstance(est, KNeighborsClassifier):
        return ClassicalHead(
            kind="knn",
            classes=classes,
            mean=mean,
            scale=scale,
            arrays={
                "points": np.asarray(est._fit_X, np.float64),
                "labels": np.asarray(est._y, np.int64),
            },
            params={"k": 1},
        )
    if isinstance(est, LinearDiscriminantAnalysis):
        return ClassicalHead(
            kind="lda",
            classes=classes,
            mean=mean,
            scale=scale,
            arrays={
                "coef": np.atleast_2d(np.asarray(est.coef_, np.float64)),
                "intercept": np.atleast_1d(np.asarray(est.intercept_, np.float64)),
            },
        )
    if isinstance(est, DecisionTreeClassifier):
        tree = est.tree_
        return ClassicalHead(
            kind="tree",
            classes=classes,
            mean=mean,
            scale=scale,
            arrays={
                "left": np.asarray(tree.children_left, np.int64),
                "right": np.asarray(tree.children_right, np.int64),
                "feature": np.asarray(tree.feature, np.int64),
                "threshold": np.asarray(tree.threshold, np.float64),
                "value": np.asarray(tree.value[:, 0, :], np.float64),
            },
        )
    raise SettingsError(f"cannot store a {type(est).__name__} as a classical head")
