"""Augmentation as the papers used it, on the training split only, as TensorFlow ops on
uint8 batches (before the card's preprocessing, so HSV models see jittered RGB).

Flips (both axes), 90-degree rotations (square inputs), and one random affine transform
per image (rotation range, shifts, zoom, shear; the edge reflected), then colour jitter
(brightness, contrast, saturation, hue, and a gain per RGB channel: another lamp or white
balance), Gaussian blur (another focus or optics) and sensor noise.
``Augment.robust()`` widens the colour range and turns on blur and noise, for models that
must hold up on other labs' stains and cameras. ``Augment.camera()`` simulates the stain and
the eyepiece camera instead (``camera_augment``: HED or L*a*b* stain jitter, white balance,
exposure, vignetting, defocus, sensor noise and 4:2:0 JPEG at a random camera resolution),
applied to crops read at twice the model input before they are resized to it.

Every random number is drawn from the batch's own seed (stateless ops), so a run with the
same seed augments the same way however tf.data schedules its parallel calls.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from micro_app.core.errors import SettingsError
from micro_app.training.camera_augment import CameraParams


@dataclass(frozen=True)
class Augment(CameraParams):
    """The papers' geometry and colour jitter (TensorFlow, at the model input), plus the
    simulated stain and camera of ``CameraParams`` (numpy, before resizing to it)."""

    flip: bool = True
    rot90: bool = True
    rotation_deg: float = 20.0
    shift: float = 0.1  # share of the side
    zoom: float = 0.1  # scale in [1 - zoom, 1 + zoom]
    shear_deg: float = 8.0
    brightness: float = 0.1  # added, share of full range
    contrast: float = 0.1  # factor in [1 - c, 1 + c]
    saturation: float = 0.1
    hue: float = 0.02  # share of the hue circle
    channel_gain: float = 0.0  # each RGB channel times a factor in [1 - g, 1 + g]
    blur_sigma: float = 0.0  # half of the batches blurred with a sigma up to this (pixels)
    noise: float = 0.0  # Gaussian sensor noise, standard deviation up to this share of 255

    def __post_init__(self) -> None:
        checks = {
            "rotation_deg": (self.rotation_deg, 180.0),
            "shift": (self.shift, 0.5),
            "zoom": (self.zoom, 0.9),
            "shear_deg": (self.shear_deg, 45.0),
            "brightness": (self.brightness, 1.0),
            "contrast": (self.contrast, 0.9),
            "saturation": (self.saturation, 0.9),
            "hue": (self.hue, 0.5),
            "channel_gain": (self.channel_gain, 0.5),
            "blur_sigma": (self.blur_sigma, 5.0),
            "noise": (self.noise, 0.2),
            "hed_sigma": (self.hed_sigma, 0.5),
            "hed_bias": (self.hed_bias, 0.3),
            "lab_mean": (self.lab_mean, 30.0),
            "lab_std": (self.lab_std, 1.0),
            "white_balance": (self.white_balance, 0.5),
            "exposure_stops": (self.exposure_stops, 2.0),
            "gamma": (self.gamma, 1.0),
            "vignette": (self.vignette, 0.9),
            "defocus_px": (self.defocus_px, 8.0),
            "shot_noise": (self.shot_noise, 5.0),
            "read_noise": (self.read_noise, 30.0),
            "jpeg_min_quality": (self.jpeg_min_quality, 95),
            "camera_min_share": (self.camera_min_share, 1.0),
            "edge_pad": (self.edge_pad, 0.6),
        }
        for name, (value, top) in checks.items():
            if not isinstance(value, (int, float)) or not 0 <= value <= top:
                raise SettingsError(f"augmentation {name} must be 0..{top}, got {value!r}")

    @classmethod
    def off(cls) -> Augment:
        return cls(
            flip=False,
            rot90=False,
            rotation_deg=0,
            shift=0,
            zoom=0,
            shear_deg=0,
            brightness=0,
            contrast=0,
            saturation=0,
            hue=0,
        )

    @classmethod
    def robust(cls) -> Augment:
        """The papers' geometry with a wider zoom (the red-cell scale estimate is off by
        up to ~15 % per field), wide colour jitter, blur and noise (``--robust-augment``).
        Chosen by measurement on another lab's fields: docs/models.md."""
        return cls(
            zoom=0.25,
            brightness=0.15,
            contrast=0.25,
            saturation=0.35,
            hue=0.1,
            channel_gain=0.2,
            blur_sigma=2.5,
            noise=0.03,
        )

    @classmethod
    def camera(cls) -> Augment:
        """Another lab's stain and another microscope's camera (``--camera-augment``): the
        papers' geometry with ±20 % scale, mild colour jitter at the input, and every step
        of ``camera_augment`` (ranges in docs/training.md)."""
        return cls(
            zoom=0.2,
            brightness=0.08,
            contrast=0.15,
            saturation=0.2,
            hue=0.03,
            hed_sigma=0.25,
            hed_bias=0.05,
            lab_mean=8.0,
            lab_std=0.2,
            white_balance=0.1,
            exposure_stops=0.4,
            gamma=0.2,
            vignette=0.25,
            defocus_px=2.5,
            shot_noise=0.5,
            read_noise=3.0,
            jpeg_min_quality=35,
            camera_min_share=0.5,
            edge_pad=0.3,
        )

    def camera_params(self) -> CameraParams:
        return CameraParams(**{f.name: getattr(self, f.name) for f in fields(CameraParams)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Draws:
    """Stateless random numbers from one batch seed: the k-th draw folds k into it."""

    def __init__(self, seed: Any) -> None:
        self.seed = seed
        self.k = 0

    def _next(self) -> Any:
        import tensorflow as tf

        self.k += 1
        return tf.random.experimental.stateless_fold_in(self.seed, self.k)

    def uniform(self, shape: Any, lo: Any = 0.0, hi: Any = 1.0, dtype: Any = None) -> Any:
        import tensorflow as tf

        dtype = dtype or tf.float32
        return tf.random.stateless_uniform(shape, self._next(), lo, hi, dtype=dtype)

    def normal(self, shape: Any) -> Any:
        import tensorflow as tf

        return tf.random.stateless_normal(shape, self._next())


def augment_batch(images: Any, aug: Augment, seed: Any) -> Any:
    """uint8 ``(B, H, W, 3)`` tensor -> augmented uint8 tensor of the same shape; ``seed``:
    an int64 ``[2]`` tensor, the batch's own."""
    import tensorflow as tf

    rnd = _Draws(seed)
    x = tf.cast(images, tf.float32)
    b = tf.shape(x)[0]
    h, w = int(images.shape[1]), int(images.shape[2])
    if aug.flip:
        lr = rnd.uniform([b, 1, 1, 1]) < 0.5
        x = tf.where(lr, tf.reverse(x, axis=[2]), x)
        ud = rnd.uniform([b, 1, 1, 1]) < 0.5
        x = tf.where(ud, tf.reverse(x, axis=[1]), x)
    if aug.rot90 and h == w:
        k = rnd.uniform([b], 0, 4, dtype=tf.int32)
        rots = tf.stack([tf.image.rot90(x, i) for i in range(4)])  # (4, B, H, W, 3)
        x = tf.gather_nd(rots, tf.stack([k, tf.range(b)], axis=1))
    if aug.rotation_deg or aug.shift or aug.zoom or aug.shear_deg:
        x = _affine(x, aug, h, w, rnd)
    if aug.brightness or aug.contrast or aug.saturation or aug.hue or aug.channel_gain:
        x = _colour(x / 255.0, aug, rnd) * 255.0
    if aug.blur_sigma:
        x = _blur(x, aug.blur_sigma, rnd)
    if aug.noise:
        sd = rnd.uniform([b, 1, 1, 1], 0.0, aug.noise * 255.0)
        x = x + rnd.normal(tf.shape(x)) * sd
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def _affine(x: Any, aug: Augment, h: int, w: int, rnd: _Draws) -> Any:
    import tensorflow as tf

    b = tf.shape(x)[0]

    def u(lim: float) -> Any:
        return rnd.uniform([b], -lim, lim)

    theta = u(math.radians(aug.rotation_deg))
    shear = u(math.radians(aug.shear_deg))
    zoom = 1.0 + u(aug.zoom)
    tx, ty = u(aug.shift) * w, u(aug.shift) * h
    cos, sin = tf.cos(theta), tf.sin(theta)
    # output -> input map: A = R(theta) @ Shear(shear) / zoom around the centre, minus shift
    a00 = cos / zoom
    a01 = (-sin + cos * tf.tan(shear)) / zoom
    a10 = sin / zoom
    a11 = (cos + sin * tf.tan(shear)) / zoom
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    b0 = cx - a00 * cx - a01 * cy - tx
    b1 = cy - a10 * cx - a11 * cy - ty
    zeros = tf.zeros([b])
    transforms = tf.stack([a00, a01, b0, a10, a11, b1, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x,
        transforms=transforms,
        output_shape=tf.constant([h, w], tf.int32),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def _colour(x: Any, aug: Augment, rnd: _Draws) -> Any:
    import tensorflow as tf

    b = tf.shape(x)[0]

    def u(lo: float, hi: float) -> Any:
        return rnd.uniform([b, 1, 1, 1], lo, hi)

    if aug.channel_gain:
        g = aug.channel_gain
        x = x * rnd.uniform([b, 1, 1, 3], 1 - g, 1 + g)
    if aug.brightness:
        x = x + u(-aug.brightness, aug.brightness)
    if aug.contrast:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * u(1 - aug.contrast, 1 + aug.contrast) + mean
    x = tf.clip_by_value(x, 0.0, 1.0)
    if aug.saturation or aug.hue:
        hsv = tf.image.rgb_to_hsv(x)
        hue = tf.math.floormod(hsv[..., 0:1] + u(-aug.hue, aug.hue), 1.0)
        sat = tf.clip_by_value(hsv[..., 1:2] * u(1 - aug.saturation, 1 + aug.saturation), 0, 1)
        x = tf.image.hsv_to_rgb(tf.concat([hue, sat, hsv[..., 2:3]], axis=-1))
    return x


def _blur(x: Any, max_sigma: float, rnd: _Draws) -> Any:
    """Gaussian blur with one random sigma per batch, on a random half of the images."""
    import tensorflow as tf

    sigma = rnd.uniform([], 0.3, max_sigma)
    radius = math.ceil(3 * max_sigma)
    t = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-0.5 * tf.square(t / sigma))
    k = k / tf.reduce_sum(k)
    kx = tf.tile(tf.reshape(k, [1, -1, 1, 1]), [1, 1, 3, 1])
    ky = tf.tile(tf.reshape(k, [-1, 1, 1, 1]), [1, 1, 3, 1])
    pad = [[0, 0], [radius, radius], [radius, radius], [0, 0]]
    y = tf.pad(x, pad, mode="REFLECT")
    y = tf.nn.depthwise_conv2d(y, kx, [1, 1, 1, 1], "VALID")
    y = tf.nn.depthwise_conv2d(y, ky, [1, 1, 1, 1], "VALID")
    pick = rnd.uniform([tf.shape(x)[0], 1, 1, 1]) < 0.5
    return tf.where(pick, y, x)
