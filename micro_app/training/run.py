"""One training run of ``micro-app train``: fit (Keras, ``fit.py``) or a classical head,
write the package (card, weights, split, replay sample, history, curves), calibrate it on
the validation split and score the test split through the app's inference path."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.atomic import atomic_write_json
from micro_app.core.errors import SettingsError
from micro_app.core.models.card import CARD_FILE, CropSpec, ModelCard, Preprocessing
from micro_app.core.models.package import load_package, save_package
from micro_app.core.stain import StainReference
from micro_app.training import split as splits
from micro_app.training.architectures import feature_extractor
from micro_app.training.config import RunData, TrainConfig, TrainResult
from micro_app.training.dataset import KNOWN_CROP_UM
from micro_app.training.fit import KerasFitting


@dataclass
class TrainingRun(KerasFitting):
    cfg: TrainConfig
    arch: Any
    source: Any
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    prep: Preprocessing
    hyper: dict[str, Any]
    info: dict[str, Any]
    strategy: Any
    imagenet: dict[str, Any] | None = None  # origin and licence of ImageNet weights used

    def card(self, architecture_name: str, extra: dict[str, Any]) -> ModelCard:
        cfg = self.cfg
        crop_um = cfg.crop_um
        if crop_um is None and cfg.scope == "cell":
            crop_um = KNOWN_CROP_UM.get(Path(cfg.dataset).resolve().name.lower())
        return ModelCard(
            name=cfg.name or f"{architecture_name}-{Path(cfg.dataset).name}",
            version=cfg.version,
            classes=self.classes,
            scope=cfg.scope,
            crop=CropSpec(size_um=crop_um),
            input_size=self.input_size,
            colour_order=self.source.card.colour_order if self.source else self.arch.colour_order,
            preprocessing=self.prep,
            architecture=architecture_name,
            description=f"{architecture_name} trained by micro-app train on "
            f"{Path(cfg.dataset).name}",
            training_data=self.info,
            unidentified_threshold=cfg.unidentified_threshold,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            extra=extra,
        )

    def run(
        self, data: RunData, record: dict[str, Any], target: Path, say: Callable[[str], None]
    ) -> TrainResult:
        images, labels = data.images, data.labels
        tr, va, te = (data.side(s) for s in splits.SIDES)
        say(f"split: {len(tr)} train, {len(va)} validation, {len(te)} test images")
        if data.extra_images is not None:
            say(
                f"plus {len(data.extra_images)} extra training images, each "
                f"{data.extra_repeat} times (never validated or tested on)"
            )
        if len(tr) == 0 or len(te) == 0:
            raise SettingsError("the split left no training or no test images: add images")
        if self.prep.stain != "none" and self.prep.stain_reference is None:
            ref = StainReference.from_images(images[tr])
            self.prep = replace(self.prep, stain_reference=ref.to_dict())
            say(f"stain reference ({self.prep.stain}) from the training split: {ref.to_dict()}")
        record["training_data"] = self.info
        work = Path(tempfile.mkdtemp(prefix="micro_app_train_"))
        try:
            files = {splits.SPLIT_FILE: splits.write_split(work / splits.SPLIT_FILE, record)}
            extra: dict[str, Any] = {"split": splits.SPLIT_FILE}
            if self.cfg.replay_per_class and self.cfg.scope == "cell":
                extra["replay"] = self._replay(data, work, files, record)
            head = None
            history: dict[str, list[float]] = {}
            if self.cfg.head:
                model, head, arch_name, more = self._classical(data, say)
                extra.update(more)
            else:
                options = dict(self.cfg.arch_options)
                hyper = dict(self.hyper)
                if self.cfg.search:
                    best, search = self._search(data, say)
                    options.update(layers=best["layers"], units=best["units"])
                    hyper["learning_rate"] = best["learning_rate"]
                    files["search.json"] = atomic_write_json(work / "search.json", search)
                    extra["search"] = {
                        m: {k: search[m][k] for k in ("best_params", "best_loss", "evaluations")}
                        for m in ("rda", "random")
                    }
                model, history, epochs_info = self._fit(data, options, hyper, say)
                arch_name = self.arch.name
                extra["training"] = {
                    **hyper,
                    **epochs_info,
                    "arch_options": options,
                    "augmentation": self.cfg.augment.to_dict(),
                    "class_weights": self.cfg.use_class_weights,
                    "weights_init": self.cfg.weights or "random",
                    "seed": self.cfg.seed,
                }
                if self.imagenet is not None:
                    extra["imagenet_weights"] = self.imagenet
                files["history.json"] = atomic_write_json(work / "history.json", history)
                from micro_app.training.plots import training_curves

                files["training_curves.png"] = training_curves(
                    history,
                    work / "training_curves.png",
                    f"{arch_name} on {record['dataset_name']}",
                )
            card = self.card(arch_name, extra)
            save_package(model, card, target, overwrite=True, head=head, files=files)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if self.cfg.calibrate:
            self._calibrate(target, data, say)
        if self.cfg.head is None:
            from micro_app.training.export import export_beside_keras

            export_beside_keras(target, say)
        metrics = self._score(target, images[te], labels[te], say)
        result = TrainResult(target, metrics, history, extra)
        result.problems = self._verdict(result)
        for line in result.problems:
            say(line)
        return result

    def _verdict(self, result: TrainResult) -> list[str]:
        """One plain line when the kept model is not fit to use, one when the accuracy the
        user asked for (``--target-accuracy``) was not reached on the validation split."""
        lines = []
        fit = (result.extra.get("training") or {}).get("fitness")
        if fit and not fit["fit"]:
            lines.append(
                "NOT FIT TO USE: "
                + "; ".join(fit["problems"])
                + ": label more images per class, check the labels, or train again"
            )
        rule = ((result.metrics.get("calibration") or {}).get("threshold") or {}).get("rule")
        if self.cfg.require_target and rule == "max_withheld":
            lines.append(
                f"TARGET MISSED: no threshold brings the validation cells it keeps to "
                f"{self.cfg.target_accuracy:.0%} while withholding at most 15% of them"
            )
        return lines

    def _replay(
        self, data: RunData, work: Path, files: dict[str, Path], record: dict[str, Any]
    ) -> dict[str, Any]:
        """A sample of every training source for the package (the training split, and the
        ``--extra-train`` images when given), so that teaching the model on a lab's cells
        later does not make it forget (``micro_app.core.models.replay``)."""
        from micro_app.core.models import replay as rp

        n, seed = self.cfg.replay_per_class, self.cfg.seed
        tr = data.side("train")
        sample = rp.sample(data.images[tr], data.labels[tr], self.classes, n, seed)
        source = f"training split of {record['dataset_name']}"
        if data.extra_images is not None and data.extra_labels is not None:
            more = rp.sample(data.extra_images, data.extra_labels, self.classes, n, seed)
            sample = rp.ReplaySet(
                np.concatenate([sample.images, more.images]),
                np.concatenate([sample.labels, more.labels]),
                self.classes,
            )
            source += f" and {len(more)} cells of {self._extra_name()}"
        files[rp.REPLAY_FILE] = sample.save(work / rp.REPLAY_FILE)
        return rp.replay_entry(sample, files[rp.REPLAY_FILE], source)

    def _calibrate(self, folder: Path, data: RunData, say: Callable[[str], None]) -> None:
        """Temperature, threshold and appearance statistics; the extra training images
        (another lab's camera) are a source of their own in the appearance check."""
        from micro_app.core.models.classifier import Classifier
        from micro_app.training.calibrate import calibrate_package
        from micro_app.training.evaluate import predict_images

        va = data.side("val")
        extra = {}
        if data.extra_images is not None:
            extra[self._extra_name()] = data.extra_images
        probs = predict_images(Classifier(load_package(folder)), data.images[va])
        c = calibrate_package(
            folder,
            probs,
            data.labels[va],
            data.images[data.side("train")],
            data.images[va],
            fixed_threshold=self.cfg.unidentified_threshold,
            target_accuracy=self.cfg.target_accuracy,
            source_name=str(self.info.get("name") or Path(self.cfg.dataset).name),
            extra_sources=extra,
        )
        th = c["threshold"]
        ece = (
            f"; validation ECE {c['validation_ece_before']:.4f} -> {c['validation_ece_after']:.4f}"
            if "validation_ece_before" in c
            else ""
        )
        withheld = (
            f", withholding {th['validation_withheld']:.1%} of validation cells "
            f"(accuracy of the rest {th['validation_accuracy_kept']:.4f})"
            if "validation_withheld" in th
            else ""
        )
        t = th["threshold"]
        say(f"temperature {c['temperature']:g}{ece}; unidentified below {t}{withheld}")
        from micro_app.training.openset_fit import fit_open_set

        fit_open_set(folder, data.images[va], say=say)

    def _extra_name(self) -> str:
        """How the appearance check names the ``--extra-train`` source."""
        also = self.info.get("also_trained_on") or {}
        return str(also.get("name") or Path(self.cfg.extra_train or "extra").name)

    # -- classical heads ----------------------------------------------------------------
    def _classical(
        self, data: RunData, say: Callable[[str], None]
    ) -> tuple[Any, Any, str, dict[str, Any]]:
        from micro_app.training.classical import HEADS, cross_validate, fit_head
        from micro_app.training.pipeline import predict_features

        cfg = self.cfg
        if self.source is not None:
            base, base_name = self.source.model, self.source.card.architecture or "cnn"
            if self.source.head is not None:
                raise SettingsError("--features-from needs a package without a classical head")
        else:
            base = self.arch.build(
                len(self.classes), self.input_size, cfg.weights, **cfg.arch_options
            )
            base_name = self.arch.name
            if cfg.weights is None:
                say(
                    "note: features of a randomly initialised CNN; use --weights imagenet or "
                    "--features-from a trained package for learned features"
                )
        extractor = feature_extractor(base)
        card = self.card(base_name, {})
        images, labels = data.images, data.labels
        idx = np.concatenate([data.side("train"), data.side("val")])
        say(f"features of {len(idx)} training + validation images from {base_name}")
        feats = predict_features(extractor, images[idx], card).reshape(len(idx), -1)
        names = list(HEADS) if cfg.head == "best" else [str(cfg.head)]
        cv = cross_validate(feats, labels[idx], names, cfg.cv_folds, cfg.seed)
        for name, r in cv.items():
            say(
                f"  {name:<13} {r['folds']}-fold accuracy {r['accuracy_mean']:.4f} "
                f"+/- {r['accuracy_std']:.4f}"
            )
        chosen = max(cv, key=lambda n: cv[n]["accuracy_mean"])
        head, _ = fit_head(chosen, feats, labels[idx], self.classes, cfg.seed)
        say(f"head: {chosen} on {feats.shape[1]} features")
        more = {"classical": {"head": chosen, "features": base_name, "cross_validation": cv}}
        return extractor, head, f"{base_name}+{chosen}", more

    # -- scoring ------------------------------------------------------------------------
    def _score(
        self, folder: Path, images: np.ndarray, labels: np.ndarray, say: Callable[[str], None]
    ) -> dict[str, Any]:
        """Score the test split through the app's inference path and put it in the card."""
        from micro_app.core.models.classifier import Classifier
        from micro_app.training.evaluate import predict_images
        from micro_app.training.metrics import classification_report
        from micro_app.training.plots import confusion_matrix_png

        pkg = load_package(folder)
        probs = predict_images(Classifier(pkg), images)
        t = pkg.card.unidentified_threshold
        report = classification_report(labels, probs, pkg.card.classes, 0.5 if t is None else t)
        report["note"] = (
            "test split of the training dataset; no patient identifiers, so a random split "
            "can put one patient's cells on both sides and the score is optimistic"
        )
        metrics = dict(pkg.card.metrics, test=report)
        atomic_write_json(folder / CARD_FILE, replace(pkg.card, metrics=metrics).to_dict())
        confusion_matrix_png(
            report["confusion_matrix"],
            list(pkg.card.classes),
            folder / "test_confusion_matrix.png",
            f"{pkg.card.name}: test split",
        )
        atomic_write_json(folder / "test_metrics.json", report)
        say(
            f"test split: accuracy {report['accuracy']:.4f}, macro F1 {report['macro_f1']:.4f} "
            f"on {report['n_images']} images -> {folder}"
        )
        return metrics
