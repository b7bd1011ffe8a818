"""Prove the ImageNet conversion: the converted Keras network names scikit-image's sample
photos as the original PyTorch network does.

    .venv/bin/python benchmarks/imagenet_proof.py   # Keras, against the stored reference
    python benchmarks/imagenet_proof.py --reference # the original (needs torch and
                                                    # efficientnet_lite_pytorch); rewrites
                                                    # tests/data/imagenet_reference.json

Both sides see the same input: the photo's centre 87.5 % square, bicubic resize to the
network's ImageNet resolution, (x - 127) / 128 (inside the Keras model; by hand for torch).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "imagenet_reference.json"
PHOTOS = ("chelsea", "coffee")
# the ImageNet classes that appear in these top-5 lists
NAMES = {
    281: "tabby cat",
    282: "tiger cat",
    283: "Persian cat",
    284: "Siamese cat",
    285: "Egyptian cat",
    287: "lynx",
    504: "coffee mug",
    622: "lens cap",
    809: "soup bowl",
    904: "window screen",
    925: "consomme",
    942: "butternut squash",
    960: "chocolate sauce",
    967: "espresso",
    968: "cup",
}
CAT_CLASSES = {281, 282, 283, 284, 285}
CUP_CLASSES = {504, 967, 968}  # coffee mug, espresso (a filled cup), cup


def photo(name: str, side: int) -> np.ndarray:
    """uint8 RGB ``(side, side, 3)``: centre 87.5 % square of the photo, bicubic."""
    import skimage.data

    img = getattr(skimage.data, name)()
    h, w = img.shape[:2]
    c = int(min(h, w) * 0.875)
    y0, x0 = (h - c) // 2, (w - c) // 2
    return cv2.resize(img[y0 : y0 + c, x0 : x0 + c], (side, side), interpolation=cv2.INTER_CUBIC)


def top5(probs: np.ndarray) -> dict[str, Any]:
    order = np.argsort(probs)[::-1][:5]
    return {
        "top5": [int(i) for i in order],
        "probabilities": [round(float(probs[i]), 5) for i in order],
    }


def keras_side(name: str) -> dict[str, Any]:
    from micro_app.training.architectures import _efficientnet_lite as lite
    from micro_app.training.imagenet_weights import ensure_cached

    v = lite.VARIANTS[name]
    path = ensure_cached(name)
    assert path is not None
    model = lite.imagenet_classifier(v)
    lite.load_npz_weights(model, path)
    x = np.stack([photo(p, v.resolution) for p in PHOTOS]).astype(np.float32)
    probs = np.asarray(model(x, training=False))
    return {p: top5(probs[i]) for i, p in enumerate(PHOTOS)}


def torch_side(name: str) -> dict[str, Any]:  # pragma: no cover - needs torch
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from micro_app.training.architectures import _efficientnet_lite as lite
    from micro_app.training.imagenet_weights import find_wheel_file

    v = lite.VARIANTS[name]
    net = EfficientNet.from_pretrained(name.replace("_", "-"), weights_path=str(find_wheel_file(v)))
    net.eval()
    out = {}
    for p in PHOTOS:
        x = (photo(p, v.resolution).astype(np.float32) - 127.0) / 128.0
        t = torch.from_numpy(x.transpose(2, 0, 1)[None].copy())
        with torch.no_grad():
            out[p] = top5(torch.softmax(net(t), 1)[0].numpy())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reference", action="store_true", help="run the PyTorch original")
    ap.add_argument(
        "--arch",
        nargs="*",
        default=["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"],
    )
    args = ap.parse_args()
    if args.reference:
        ref: dict[str, Any] = {name: torch_side(name) for name in args.arch}
        ref["_how"] = (
            "top-5 ImageNet classes of skimage.data.chelsea() and coffee() from the original "
            "PyTorch network (efficientnet_lite_pytorch EfficientNet.from_pretrained with the "
            "wheel's .pth): benchmarks/imagenet_proof.py --reference"
        )
        REFERENCE.write_text(json.dumps(ref, indent=1) + "\n", encoding="utf-8")
        print(f"reference -> {REFERENCE}")
        return 0
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    for name in args.arch:
        got = keras_side(name)
        for p in PHOTOS:
            g, r = got[p], ref[name][p]
            same = g["top5"] == r["top5"]
            diff = max(
                abs(a - b) for a, b in zip(g["probabilities"], r["probabilities"], strict=True)
            )
            shown = ", ".join(
                f"{NAMES.get(i, i)} {pr:.3f}"
                for i, pr in zip(g["top5"], g["probabilities"], strict=True)
            )
            print(f"{name} {p}: {shown}")
            print(
                f"  original network: same top-5 {same}, largest probability difference {diff:.5f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
