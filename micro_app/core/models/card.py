"""The model card: what a model package promises about its weights.

Modelled on the bioimage.io model description (rdf.yaml): classes, input size and colour
order, the preprocessing the model was trained with, its training data and licence, metrics,
and the sha256 of each weights file. Unknown keys are rejected so a typo is never ignored.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from micro_app.core.appearance import Appearance
from micro_app.core.errors import ModelPackageError
from micro_app.core.stain import STAIN_MODES, StainReference
from micro_app.core.typed import known_keys_only

CARD_FILE = "card.json"
FORMAT_VERSION = 1
SCOPES = ("cell", "field")
COLOUR_ORDERS = ("RGB", "BGR")
NORMALISATIONS = ("none", "unit", "symmetric", "imagenet")
# "classical": a numpy classifier head (``head.npz``) on the Keras model's features;
# "onnx_int8" / "tflite_int8": the quantised exports of ``micro-app export --quantize``.
WEIGHT_FORMATS = ("keras", "onnx", "tflite", "classical", "onnx_int8", "tflite_int8")


@dataclass(frozen=True)
class CropSpec:
    """How a cell crop is cut before it is resized to the model input.

    ``size_um``: side of the square crop in micrometres (scale-independent framing);
    ``None`` means the locator's own crop box is used as it is.
    """

    size_um: float | None = None


@dataclass(frozen=True)
class Preprocessing:
    """Steps applied to each model input, in this order, before normalisation."""

    median: bool = False
    sharpen: bool = False
    hsv: bool = False
    normalisation: str = "unit"
    # colour normalisation before everything else (``micro_app.core.stain``): "none" or
    # "reinhard" to ``stain_reference`` ({"mean": [L, a, b], "std": [L, a, b]})
    stain: str = "none"
    stain_reference: dict[str, Any] | None = None


@dataclass(frozen=True)
class WeightsFile:
    file: str
    sha256: str


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    classes: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width)
    scope: str = "cell"
    colour_order: str = "RGB"
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    crop: CropSpec = field(default_factory=CropSpec)
    weights: dict[str, WeightsFile] = field(default_factory=dict)
    description: str = ""
    architecture: str = ""
    training_data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    unidentified_threshold: float | None = None
    created: str = ""
    parent: str | None = None
    # softmax temperature fitted on the validation split (1.0: probabilities as the net gives)
    temperature: float = 1.0
    # what the training images looked like, per source (``micro_app.core.appearance``)
    appearance: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(bool(self.name.strip()), "card 'name' is empty")
        _check(bool(self.version.strip()), "card 'version' is empty")
        _check(
            len(self.classes) >= 2,
            f"card 'classes' needs at least 2 names, got {list(self.classes)}",
        )
        _check(
            len(set(self.classes)) == len(self.classes),
            f"card 'classes' has duplicates: {list(self.classes)}",
        )
        _check("unidentified" not in self.classes, "card 'classes' may not contain 'unidentified'")
        h, w = self.input_size
        _check(
            8 <= h <= 4096 and 8 <= w <= 4096, f"card 'input_size' out of range: {self.input_size}"
        )
        _check(self.scope in SCOPES, f"card 'scope' must be one of {SCOPES}, got {self.scope!r}")
        _check(
            self.colour_order in COLOUR_ORDERS,
            f"card 'colour_order' must be one of {COLOUR_ORDERS}, got {self.colour_order!r}",
        )
        _check(
            self.preprocessing.normalisation in NORMALISATIONS,
            f"card normalisation must be one of {NORMALISATIONS}, "
            f"got {self.preprocessing.normalisation!r}",
        )
        _check(
            self.preprocessing.stain in STAIN_MODES,
            f"card stain must be one of {STAIN_MODES}, got {self.preprocessing.stain!r}",
        )
        if self.preprocessing.stain != "none":
            _check(
                self.preprocessing.stain_reference is not None,
                "card stain normalisation has no stain_reference: retrain or fix the card",
            )
            try:
                StainReference.from_dict(self.preprocessing.stain_reference or {})
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise ModelPackageError(f"card stain_reference is malformed ({exc})") from exc
        _check(
            isinstance(self.temperature, (int, float)) and 0.05 <= self.temperature <= 20,
            f"card 'temperature' must be 0.05..20, got {self.temperature!r}",
        )
        if self.appearance is not None:
            try:
                Appearance.from_dict(self.appearance)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise ModelPackageError(f"card 'appearance' is malformed ({exc})") from exc
        for fmt in self.weights:
            _check(fmt in WEIGHT_FORMATS, f"card weights format {fmt!r} not in {WEIGHT_FORMATS}")
        t = self.unidentified_threshold
        _check(t is None or 0.0 <= t <= 1.0, f"card 'unidentified_threshold' must be 0..1, got {t}")
        _check(
            self.format_version == FORMAT_VERSION,
            f"card format_version {self.format_version} is not supported "
            f"(this app reads {FORMAT_VERSION}): update micro_app",
        )

    # -- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        d = known_keys_only(cls, data, "card.json", ModelPackageError, " or update micro_app")
        for key in ("name", "version", "classes", "input_size"):
            _check(key in d, f"card.json lacks required key {key!r}")
        _check_types(d)
        try:
            d["classes"] = tuple(str(c) for c in d["classes"])
            size = d["input_size"]
            d["input_size"] = (int(size[0]), int(size[1]))
            d["preprocessing"] = Preprocessing(**_known(Preprocessing, d, "preprocessing"))
            d["crop"] = CropSpec(**_known(CropSpec, d, "crop"))
            d["weights"] = {
                k: WeightsFile(
                    **known_keys_only(WeightsFile, v, f"card weights {k!r}", ModelPackageError)
                )
                for k, v in d.get("weights", {}).items()
            }
            return cls(**d)
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise ModelPackageError(
                f"card.json is malformed ({exc}): fix the card or re-export"
            ) from exc

    @classmethod
    def read(cls, folder: Path) -> ModelCard:
        path = Path(folder) / CARD_FILE
        if not path.is_file():
            raise ModelPackageError(f"{folder} has no {CARD_FILE}: choose a model package folder")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelPackageError(
                f"{path} is not valid JSON ({exc}): re-export the model"
            ) from exc
        return cls.from_dict(data)

    def identity(self) -> str:
        """One checksum for everything that decides what a cell is called: the weights'
        sha256, the classes in their order, the input, preprocessing, crop, temperature and
        threshold. Two packages that label cells differently never share it."""
        what = {
            "weights": sorted((k, w.sha256) for k, w in self.weights.items()),
            "classes": list(self.classes),
            "input_size": list(self.input_size),
            "scope": self.scope,
            "colour_order": self.colour_order,
            "preprocessing": asdict(self.preprocessing),
            "crop": asdict(self.crop),
            "temperature": self.temperature,
            "unidentified_threshold": self.unidentified_threshold,
            "open_set": (self.extra.get("open_set") or {}).get("sha256"),
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """The part of the card that goes into every sidecar."""
        keras = self.weights.get("keras")
        return {
            "name": self.name,
            "version": self.version,
            "scope": self.scope,
            "classes": list(self.classes),
            "sha256": keras.sha256 if keras else None,
            "identity": self.identity(),
        }


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ModelPackageError(message)


def _known(cls: type, d: dict[str, Any], key: str) -> dict[str, Any]:
    return known_keys_only(cls, d.get(key, {}), f"card {key!r}", ModelPackageError)


def _number(v: object, lo: float, hi: float) -> bool:
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
        and lo <= v <= hi
    )


def _check_types(d: dict[str, Any]) -> None:
    """Types and ranges of a card read from JSON, before anything uses it: one line each."""
    for key in ("name", "version", "scope", "colour_order", "description", "architecture"):
        if key in d:
            _check(isinstance(d[key], str), f"card {key!r} must be text, got {d[key]!r}")
    classes = d["classes"]
    _check(
        isinstance(classes, list) and all(isinstance(c, str) and c.strip() for c in classes),
        f"card 'classes' must be a list of class names, got {classes!r}",
    )
    size = d["input_size"]
    _check(
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in size),
        f"card 'input_size' must be [height, width], got {size!r}",
    )
    for key in ("preprocessing", "crop", "weights", "training_data", "metrics", "extra"):
        if key in d:
            _check(isinstance(d[key], dict), f"card {key!r} must be an object, got {d[key]!r}")
    for key, value in (d.get("weights") or {}).items():
        _check(
            isinstance(value, dict)
            and isinstance(value.get("file"), str)
            and isinstance(value.get("sha256"), str),
            f"card weights {key!r} must give a file and its sha256, got {value!r}",
        )
    prep = d.get("preprocessing") or {}
    for key in ("median", "sharpen", "hsv"):
        if key in prep:
            _check(
                isinstance(prep[key], bool),
                f"card preprocessing {key!r} must be true or false, got {prep[key]!r}",
            )
    size_um = (d.get("crop") or {}).get("size_um")
    _check(
        size_um is None or _number(size_um, 1.0, 500.0),
        f"card crop 'size_um' must be 1..500 µm, got {size_um!r}",
    )
    if "temperature" in d:
        _check(
            _number(d["temperature"], 0.05, 20),
            f"card 'temperature' must be 0.05..20, got {d['temperature']!r}",
        )
    t = d.get("unidentified_threshold")
    _check(t is None or _number(t, 0, 1), f"card 'unidentified_threshold' must be 0..1, got {t!r}")


def trained_on(data: dict[str, Any]) -> str:
    """The data a model learnt from, with licences, as one phrase: its ``training_data``
    and the set it was also trained on (``also_trained_on``), when there is one."""
    sets = [data, data.get("also_trained_on")]
    return " and ".join(
        f"{d.get('name', '?')} ({d.get('licence', '?')})" for d in sets if isinstance(d, dict)
    )
