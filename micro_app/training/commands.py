"""Subcommands train / evaluate / export / explain, registered on the main parser
(their options: ``command_args``) and run here.

Nothing here imports TensorFlow at module level: ``micro-app --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from micro_app.training.command_args import register

__all__ = ["COMMANDS", "register", "run"]

COMMANDS: frozenset[str] = frozenset({"train", "evaluate", "export", "explain", "imagenet-weights"})


def run(args: argparse.Namespace) -> int:
    if args.command == "train":
        return _train(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "export":
        from micro_app.training.export import export

        r = export(args.model, args.to, args.quantize)
        against = "FP32" if r["format"] == "onnx_int8" else "Keras"
        print(
            f"{r['format']}: {r['file']} ({r['size_bytes'] / 1e6:.1f} MB); same class as "
            f"{against} on {r['top1_agreement']:.1%} of {r['checked_on']}, probabilities "
            f"within {r['max_abs_diff']:.2g}"
        )
        return 0
    if args.command == "imagenet-weights":
        from micro_app.training.imagenet_weights import convert

        convert(args.arch, args.pth)
        return 0
    if args.command == "explain":
        from micro_app.training.explain import explain

        r = explain(args.model, args.image, args.out, args.class_name)
        print(f"{r['image']}: {r['class']} ({r['probability']:.2f}), Grad-CAM -> {r['out']}")
        return 0
    raise SystemExit(f"unknown command {args.command}")


def _train(args: argparse.Namespace) -> int:
    from micro_app.training.train import TrainConfig, train

    cfg = TrainConfig(
        dataset=args.dataset,
        arch=args.arch,
        out=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        input_size=args.input_size,
        val_split=args.val_split,
        test_split=args.test_split,
        folds=args.folds,
        seed=args.seed,
        weights=args.weights,
        classes=tuple(c.strip() for c in args.classes.split(",")) if args.classes else None,
        max_per_class=args.max_per_class,
        median=args.median,
        sharpen=args.sharpen,
        hsv=args.hsv,
        augment=_augment(args),
        stain=args.stain,
        extra_train=args.extra_train,
        extra_train_repeat=args.extra_train_repeat,
        replay_per_class=args.replay_per_class,
        crop_um=args.crop_um,
        scope=args.scope,
        target_accuracy=0.99 if args.target_accuracy is None else args.target_accuracy,
        require_target=args.target_accuracy is not None,
        warmup_epochs=args.warmup_epochs,
        fine_tune_lr=args.fine_tune_lr,
        calibrate=not args.no_calibrate,
        use_class_weights=not args.no_class_weights,
        patience=args.patience,
        name=args.name,
        version=args.model_version,
        data_name=args.data_name,
        data_licence=args.data_licence,
        data_citation=args.data_citation,
        search=args.search,
        search_budget=args.search_budget,
        search_epochs=args.search_epochs,
        head=args.head,
        features_from=args.features_from,
        cv_folds=args.cv_folds,
        unidentified_threshold=args.threshold,
        arch_options=dict(args.arch_option),
        overwrite=args.overwrite,
        verbose=2 if args.quiet else None,
    )
    result = train(cfg)
    return 1 if cfg.require_target and result.problems else 0


def _augment(args: argparse.Namespace) -> Any:
    from dataclasses import fields, replace

    from micro_app.core.errors import SettingsError
    from micro_app.training.augment import Augment

    chosen = [f for f in ("no_augment", "robust_augment", "camera_augment") if getattr(args, f)]
    if len(chosen) > 1:
        flags = " and ".join("--" + f.replace("_", "-") for f in chosen)
        raise SettingsError(f"choose one of {flags}")
    base = (
        Augment.off()
        if args.no_augment
        else Augment.robust()
        if args.robust_augment
        else Augment.camera()
        if args.camera_augment
        else Augment()
    )
    changes = dict(args.augment_option)
    known = {f.name for f in fields(Augment)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise SettingsError(f"unknown augmentation settings {unknown}; known: {sorted(known)}")
    return replace(base, **changes)


def _evaluate(args: argparse.Namespace) -> int:
    from micro_app.training.evaluate import evaluate, summary_lines

    report = evaluate(
        args.model,
        args.dataset,
        backend=args.backend,
        threshold=args.threshold,
        batch_size=args.batch_size,
        out=args.out,
    )
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        print("\n".join(summary_lines(report)))
        if args.out:
            print(f"metrics and confusion matrix -> {args.out}")
    return 0
