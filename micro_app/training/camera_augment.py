"""Another lab's stain and another microscope's camera, simulated on training crops.

Pure numpy/OpenCV functions on one uint8 RGB image with a ``numpy.random.Generator``;
``camera_augment`` chains them the way light reaches the model in the live view:

1. **camera resolution**: the crop is resampled to between ``camera_min_share`` and 100 %
   of its side, as a coarser camera would see it (pixel-wise steps run there, cheaper);
2. **stain** (the slide): either a HED jitter (colour deconvolution into haematoxylin,
   eosin and a residual channel, each scaled and shifted: Tellez et al. 2018), or a
   RandStainNA-style jitter in L*a*b* (the crop is Reinhard-mapped to a random stain
   template near its own mean and spread: Shen et al. 2022);
3. **optics and sensor**: white balance and exposure (gain per channel, a power of two,
   gamma), vignetting (a radial fall-off whose centre may lie outside the crop, as a crop is
   a part of the field), defocus (a pillbox kernel), sensor noise (shot noise growing with
   the signal plus read noise);
4. **the USB/MJPEG link**: JPEG with 4:2:0 chroma subsampling at a random quality;
5. **the frame's edge**: half of the crops get a band of background colour along one side,
   as the app pads a cell cut near the edge of a field;
6. resize to the model input, as the live view resizes its crops.

Geometry (flips, rotation, the ±20 % scale jitter) stays in ``augment.augment_batch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from micro_app.core.locate import background_colour

# Ruifrok & Johnston's optical-density vectors of haematoxylin, eosin and DAB (one per row,
# as in scikit-image's ``rgb_from_hed``)
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)
JPEG_420 = [int(cv2.IMWRITE_JPEG_SAMPLING_FACTOR), int(cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420)]


@dataclass(frozen=True)
class CameraParams:
    """Ranges of the simulated stain and camera; 0 turns a step off."""

    hed_sigma: float = 0.0  # HED channels scaled by 1 + U(-s, s)
    hed_bias: float = 0.0  # and shifted by U(-b, b) (optical density)
    lab_mean: float = 0.0  # L*a*b* template mean moved by N(0, this) units per channel
    lab_std: float = 0.0  # template spread scaled by exp(N(0, this))
    white_balance: float = 0.0  # gain per channel exp(N(0, this))
    exposure_stops: float = 0.0  # whole image times 2**U(-e, e)
    gamma: float = 0.0  # gamma in exp(U(-g, g))
    vignette: float = 0.0  # up to this share darker at the far corner
    defocus_px: float = 0.0  # pillbox radius up to this, in camera pixels
    shot_noise: float = 0.0  # noise variance up to this times the value (0..255 scale)
    read_noise: float = 0.0  # plus Gaussian noise of up to this standard deviation
    jpeg_min_quality: int = 0  # JPEG 4:2:0 at a quality between this and 95 (0: none)
    camera_min_share: float = 1.0  # camera resolution as a share of the crop's side
    # half of the crops cut at the frame's edge: up to this share of the side, on one side,
    # filled with the background colour, as the app pads a cell near the edge of a field
    edge_pad: float = 0.0

    @property
    def enabled(self) -> bool:
        return any(
            (
                self.hed_sigma,
                self.hed_bias,
                self.lab_mean,
                self.lab_std,
                self.white_balance,
                self.exposure_stops,
                self.gamma,
                self.vignette,
                self.defocus_px,
                self.shot_noise,
                self.read_noise,
                self.jpeg_min_quality,
                self.camera_min_share < 1.0,
                self.edge_pad,
            )
        )


_OD = (-np.log((np.arange(256, dtype=np.float64) + 1.0) / 256.0)).astype(np.float32)
# 8-bit L*a*b* (OpenCV): L scaled by 255/100, a and b offset by 128
_LAB8_SCALE = np.array([255.0 / 100.0, 1.0, 1.0], np.float32)


def hed_jitter(img: np.ndarray, rng: np.random.Generator, sigma: float, bias: float) -> np.ndarray:
    """Scale and shift the haematoxylin, eosin and residual optical densities. The whole
    round trip is one 3x3 affine map in optical-density space."""
    alpha = 1.0 + rng.uniform(-sigma, sigma, 3)
    beta = rng.uniform(-bias, bias, 3)
    m = HED_FROM_RGB @ np.diag(alpha) @ RGB_FROM_HED
    affine = np.hstack([m.T, (beta @ RGB_FROM_HED)[:, None]]).astype(np.float32)
    od = cv2.transform(_OD[img], affine)
    return _to_uint8(256.0 * np.exp(-od) - 1.0)


def lab_jitter(
    img: np.ndarray, rng: np.random.Generator, mean_sd: float, std_sd: float
) -> np.ndarray:
    """Reinhard-map the crop to a random stain template near its own: mean moved by
    N(0, ``mean_sd``) L*a*b* units, spread scaled by exp(N(0, ``std_sd``))."""
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)
    mean, std = cv2.meanStdDev(lab)
    mean, std = mean.ravel().astype(np.float32), std.ravel().astype(np.float32) + 1e-3
    new_mean = mean + rng.normal(0.0, mean_sd, 3).astype(np.float32) * _LAB8_SCALE
    gain = np.exp(rng.normal(0.0, std_sd, 3)).astype(np.float32)
    out = (lab - mean) * gain + new_mean
    return cv2.cvtColor(_to_uint8(out), cv2.COLOR_LAB2RGB)


def white_balance_exposure(
    img: np.ndarray, rng: np.random.Generator, wb: float, stops: float, gamma: float
) -> np.ndarray:
    x = img.astype(np.float32) / 255.0
    if wb:
        x = x * np.exp(rng.normal(0.0, wb, 3)).astype(np.float32)
    if stops:
        x = x * np.float32(2.0 ** rng.uniform(-stops, stops))
    if gamma:
        x = np.clip(x, 0.0, 1.0) ** np.float32(math.exp(rng.uniform(-gamma, gamma)))
    return _to_uint8(x * 255.0)


def vignette(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    h, w = img.shape[:2]
    cy, cx = rng.uniform(-0.5, 1.5) * h, rng.uniform(-0.5, 1.5) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / float((2 * h) ** 2 + (2 * w) ** 2)
    fall = 1.0 - rng.uniform(0.0, strength) * r2 / max(float(r2.max()), 1e-6)
    return _to_uint8(img.astype(np.float32) * fall[..., None])


def defocus(img: np.ndarray, rng: np.random.Generator, max_radius: float) -> np.ndarray:
    r = rng.uniform(0.0, max_radius)
    if r < 0.5:
        return img
    k = math.ceil(r)
    yy, xx = np.mgrid[-k : k + 1, -k : k + 1].astype(np.float32)
    # anti-aliased disc: coverage of each kernel pixel by a disc of radius r
    kernel = np.clip(r + 0.5 - np.sqrt(xx**2 + yy**2), 0.0, 1.0)
    kernel /= kernel.sum()
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)


def sensor_noise(img: np.ndarray, rng: np.random.Generator, shot: float, read: float) -> np.ndarray:
    x = img.astype(np.float32)
    var = np.float32(rng.uniform(0.0, shot)) * x + np.float32(rng.uniform(0.0, read) ** 2)
    noise = np.empty_like(x)
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    cv2.randn(noise, np.zeros(1), np.ones(1))
    return _to_uint8(x + noise * np.sqrt(var))


def jpeg_420(img: np.ndarray, rng: np.random.Generator, min_quality: int) -> np.ndarray:
    q = int(rng.integers(min_quality, 96))
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), q, *JPEG_420])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        return img
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img if decoded is None else decoded[..., ::-1]


def edge_pad(img: np.ndarray, rng: np.random.Generator, max_share: float) -> np.ndarray:
    """A band along one side in the slide's background colour, as when the cell lies near
    the edge of the camera's field and the crop reaches past it (``locate.extract_crops``)."""
    if rng.random() >= 0.5:
        return img
    h, w = img.shape[:2]
    band = int(rng.uniform(0.0, max_share) * h)
    if band < 1:
        return img
    out = img.copy()
    colour = np.array(background_colour(img), np.uint8)
    side = int(rng.integers(0, 4))
    if side == 0:
        out[:band] = colour
    elif side == 1:
        out[h - band :] = colour
    elif side == 2:
        out[:, :band] = colour
    else:
        out[:, w - band :] = colour
    return out


def camera_augment(
    img: np.ndarray, p: CameraParams, rng: np.random.Generator, out_size: tuple[int, int]
) -> np.ndarray:
    """One training crop (uint8 RGB, any size) -> stain and camera applied, resized to
    ``out_size`` (height, width)."""
    if p.camera_min_share < 1.0:
        side = img.shape[0] * rng.uniform(p.camera_min_share, 1.0)
        side = max(out_size[0], round(side))
        if side < img.shape[0]:  # a camera samples the image: bilinear, not averaged
            img = cv2.resize(img, (side, side), interpolation=cv2.INTER_LINEAR)
    if p.hed_sigma or p.hed_bias or p.lab_mean or p.lab_std:
        hed = bool(p.hed_sigma or p.hed_bias)
        lab = bool(p.lab_mean or p.lab_std)
        if hed and (not lab or rng.random() < 0.5):
            img = hed_jitter(img, rng, p.hed_sigma, p.hed_bias)
        else:
            img = lab_jitter(img, rng, p.lab_mean, p.lab_std)
    if p.white_balance or p.exposure_stops or p.gamma:
        img = white_balance_exposure(img, rng, p.white_balance, p.exposure_stops, p.gamma)
    if p.vignette:
        img = vignette(img, rng, p.vignette)
    if p.defocus_px:
        img = defocus(img, rng, p.defocus_px)
    if p.shot_noise or p.read_noise:
        img = sensor_noise(img, rng, p.shot_noise, p.read_noise)
    if p.jpeg_min_quality:
        img = jpeg_420(img, rng, p.jpeg_min_quality)
    if p.edge_pad:
        img = edge_pad(img, rng, p.edge_pad)
    h, w = out_size
    if img.shape[:2] != (h, w):
        interp = cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR
        img = cv2.resize(img, (w, h), interpolation=interp)
    return np.ascontiguousarray(img)


def camera_batch(
    images: np.ndarray, p: CameraParams, seed: int, out_size: tuple[int, int]
) -> np.ndarray:
    """``camera_augment`` over a uint8 batch ``(N, H, W, 3)`` with one seeded generator."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(images), *out_size, 3), np.uint8)
    for i, img in enumerate(images):
        out[i] = camera_augment(img, p, rng, out_size)
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
