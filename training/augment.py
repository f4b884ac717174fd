"""The papers' seven augmentations on whole batches of tensors, and DCRNet's class oversampling.

torchvision applies such ops one image at a time in Python, which on a 2-core CPU costs more than a small
model's forward pass; here each op draws per-sample decisions as tensors and transforms the selected rows of a
``(B, C, H, W)`` batch in one call. Camera corruptions (``corrupt``, off by default) are torchvision v2 calls
on the model-size face. The choices the papers leave open are listed in docs/training.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from training.config import AugmentConfig

OPS = ("hflip", "crop", "rotate", "jitter", "noise", "cutout", "corrupt", "mixup")


@dataclass(frozen=True)
class ResolvedAugment:
    """An :class:`AugmentConfig` with ``strength`` applied and pixel sizes scaled to one input size."""

    p: dict[str, float]
    crop_padding: int
    cutout_size: int
    brightness: float
    contrast: float
    saturation: float
    hue: float
    degrees: float
    noise_sigma: tuple[float, float]
    mixup_alpha: float
    max_severity: float


def resolve(cfg: AugmentConfig, input_size: int) -> ResolvedAugment:
    """Probabilities and magnitudes actually used at ``input_size`` (see the module docstring)."""
    s = cfg.strength if cfg.enabled else 0.0
    scale = input_size / cfg.ref_size

    def px(value: int) -> int:
        return max(1, round(value * scale * s)) if value > 0 and s > 0 else 0

    return ResolvedAugment(
        p={op: min(1.0, getattr(cfg, op) * s) for op in OPS},
        crop_padding=px(cfg.crop_padding),
        cutout_size=min(input_size, px(cfg.cutout_size)),
        brightness=cfg.brightness * s,
        contrast=cfg.contrast * s,
        saturation=cfg.saturation * s,
        hue=min(0.5, cfg.hue * s),
        degrees=cfg.degrees * s,
        noise_sigma=(cfg.noise_sigma[0] * s, cfg.noise_sigma[1] * s),
        mixup_alpha=cfg.mixup_alpha,
        max_severity=min(1.0, s),
    )


def _uniform(n: int, low: float, high: float, g: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g, device=device)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, keeping a channel axis; a 1-channel batch is its own gray."""
    if x.shape[1] == 1:
        return x
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def random_crop(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad`` and cut a random window of the original size from each image."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=x.device)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)


def rotate(x: torch.Tensor, degrees: float, g: torch.Generator) -> torch.Tensor:
    """Rotate each image by an angle uniform in [-degrees, degrees] about its centre (bilinear, zero fill)."""
    b = x.shape[0]
    angle = _uniform(b, -degrees, degrees, g, x.device) * (math.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def color_jitter(
    x: torch.Tensor, brightness: float, contrast: float, saturation: float, hue: float, g: torch.Generator
) -> torch.Tensor:
    """Brightness, contrast, saturation, hue with per-image factors, each clamped to [0, 1] like torchvision."""
    b = x.shape[0]

    def factor(amount: float) -> torch.Tensor:
        return _uniform(b, max(0.0, 1 - amount), 1 + amount, g, x.device).view(b, 1, 1, 1)

    x = (x * factor(brightness)).clamp(0, 1)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * factor(contrast) + mean).clamp(0, 1)
    if x.shape[1] == 3:
        gray = _gray(x)
        x = ((x - gray) * factor(saturation) + gray).clamp(0, 1)
        if hue > 0:
            x = _hue_shift(x, _uniform(b, -hue, hue, g, x.device))
    return x


_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _hue_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the IQ chroma plane by ``2*pi*shift`` (shift in turns, like torchvision's hue factor)."""
    m = _RGB2YIQ.to(x)
    yiq = torch.einsum("ij,bjhw->bihw", m, x)
    a = shift * 2 * math.pi
    cos, sin = torch.cos(a).view(-1, 1, 1), torch.sin(a).view(-1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], 1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(m), yiq).clamp(0, 1)


def add_noise(x: torch.Tensor, std: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Add zero-mean Gaussian noise with one standard deviation per image (shape ``(B,)``), clamped to [0, 1]."""
    std = std.to(x.dtype).view(-1, 1, 1, 1)
    return (x + std * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)).clamp(0, 1)


def cutout(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square centred uniformly in each image (clipped at the border)."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=g, device=x.device)
    cx = torch.randint(0, w, (b,), generator=g, device=x.device)
    y0, x0 = cy - size // 2, cx - size // 2
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    my = (ys >= y0[:, None]) & (ys < (y0 + size)[:, None])  # (B, H)
    mx = (xs >= x0[:, None]) & (xs < (x0 + size)[:, None])  # (B, W)
    hole = (my[:, :, None] & mx[:, None, :])[:, None]  # (B, 1, H, W)
    return x.masked_fill(hole, 0.0)


SEVERITY: dict[str, tuple[float, float]] = {
    "noise": (0.02, 0.12),  # std on [0, 1] pixels: a dim webcam's sensor noise
    "blur": (0.01, 0.04),  # Gaussian sigma as a fraction of the side: 0.5 to 1.9 px at 48 px (defocus, motion)
    "low_light": (0.8, 0.35),  # gain of gain * x**gamma, with gamma 1.2 (mild) to 2.2 (severe): under-exposure
    "jpeg": (70, 10),  # JPEG quality: streaming/messaging compression down to heavy blocking
    "low_res": (0.5, 0.2),  # side kept before upsampling back: a face 24 down to 10 px wide at 48 px
    "occlusion": (0.05, 0.25),  # erased area fraction (hand, mask, glasses, hair), aspect 1:2 to 2:1
    "high_brightness": (1.4, 2.2),  # brightness gain, clipped at white: a backlit or over-exposed webcam
    "low_contrast": (0.6, 0.25),  # contrast factor towards the image's mean gray: haze, a washed-out screen
    "rotation": (10.0, 30.0),  # degrees, sign drawn per image: a tilted head or camera (zero fill)
}
"""Each corruption's (mild, severe) parameter; the severity ``t`` in [0, 1] interpolates between them."""

_GAMMA = (1.2, 2.2)


def _lerp(t: torch.Tensor, name: str) -> torch.Tensor:
    mild, severe = SEVERITY[name]
    return mild + t * (severe - mild)


def _each(x: torch.Tensor, fn: Callable[..., torch.Tensor], *params: torch.Tensor) -> torch.Tensor:
    """Apply a torchvision function that takes one parameter set per call to each image of the batch."""
    if x.shape[0] == 0:
        return x
    return torch.stack([fn(img, *(p[i].item() for p in params)) for i, img in enumerate(x)])


def corrupt_noise(x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Sensor noise: Gaussian with std from :data:`SEVERITY`."""
    return add_noise(x, _lerp(t, "noise"), g)


def corrupt_blur(x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Defocus: Gaussian blur with sigma a fraction of the side; kernel 3 sigma each way, capped at the image."""
    side = min(x.shape[-2:])
    sigma = _lerp(t, "blur") * side
    cap = side if side % 2 else side - 1
    kernel = (2 * torch.ceil(3 * sigma) + 1).clamp(max=cap).int()
    return _each(x, lambda img, k, s: TF.gaussian_blur(img, [k, k], [s, s]), kernel, sigma)


def corrupt_low_light(x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Under-exposure: ``gain * x**gamma`` (darker overall, shadows crushed most)."""
    gamma = _GAMMA[0] + t * (_GAMMA[1] - _GAMMA[0])
    return _each(x, TF.adjust_gamma, gamma, _lerp(t, "low_light"))


def corrupt_jpeg(x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """JPEG round trip at the drawn quality, through uint8 as the codec requires (on the CPU)."""
    quality = _lerp(t, "jpeg").round().int()
    u8 = (x * 255).round().clamp(0, 255).to(torch.uint8).cpu()
    return (_each(u8, TF.jpeg, quality).to(x.device, x.dtype) / 255).clamp(0, 1)


def corrupt_low_res(x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A small face upscaled: antialiased bilinear down to a fraction of the side, bilinear back up."""
    h, w = x.shape[-2:]
    frac = _lerp(t, "low_res")
    small_h = (frac * h).round().clamp(min=2).int()
    small_w = (frac * w).round().clamp(min=2).int()

    def down_up(img: torch.Tensor, sh: int, sw: int) -> torch.Tensor:
        return TF.resize(TF.resize(img, [sh, sw], antialias=True), [h, w], antialias=True)

    return _each(x, down_up, small_h, small_w).clamp(0, 1)


def corrupt_occlusion(x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random erasing (Zhong et al. 2020): a rectangle inside the image set to one random gray level."""
    n, _, h, w = x.shape
    area = _lerp(t, "occlusion") * h * w
    aspect = torch.exp(_uniform(n, math.log(0.5), math.log(2.0), g, x.device))
    eh = torch.sqrt(area * aspect).round().clamp(1, h).int()
    ew = torch.sqrt(area / aspect).round().clamp(1, w).int()
    top = (torch.rand(n, generator=g, device=x.device) * (h - eh + 1)).floor().int()
    left = (torch.rand(n, generator=g, device=x.device) * (w - ew + 1)).floor().int()
    fill = torch.rand(n, generator=g, device=x.device)
    return _each(x, TF.erase, top, left, eh, ew, fill)


CORRUPTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]] = {
    "noise": corrupt_noise,
    "blur": corrupt_blur,
    "low_light": corrupt_low_light,
    "jpeg": corrupt_jpeg,
    "low_res": corrupt_low_res,
    "occlusion": corrupt_occlusion,
}
"""Camera corruptions by name: ``fn(x, severity, generator)`` with one severity in [0, 1] per image."""


def _per_level(x: torch.Tensor, t: torch.Tensor, fn: Callable[[torch.Tensor, float], torch.Tensor]) -> torch.Tensor:
    """``fn(rows, level)`` once per distinct severity (torchvision's batch calls take one parameter set)."""
    out = x.clone()
    for level in torch.unique(t):
        rows = (t == level).nonzero().squeeze(1)
        out[rows] = fn(x[rows], float(level))
    return out


def corrupt_high_brightness(x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Over-exposure: torchvision's ``adjust_brightness`` (gain, clipped at 1)."""
    return _per_level(x, _lerp(t, "high_brightness"), TF.adjust_brightness)


def corrupt_low_contrast(x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Washed out: torchvision's ``adjust_contrast`` (blend with the image's mean gray)."""
    return _per_level(x, _lerp(t, "low_contrast"), TF.adjust_contrast)


def corrupt_rotation(x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """In-plane tilt: torchvision's ``rotate`` about the centre (bilinear, zero fill), the sign drawn per image."""
    sign = torch.where(torch.rand(x.shape[0], generator=g, device=x.device) < 0.5, -1.0, 1.0)
    angle = sign * _lerp(t, "rotation").to(sign)
    return _per_level(x, angle, partial(TF.rotate, interpolation=TF.InterpolationMode.BILINEAR))


EVAL_CORRUPTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]] = {
    **CORRUPTIONS,
    "high_brightness": corrupt_high_brightness,
    "low_contrast": corrupt_low_contrast,
    "rotation": corrupt_rotation,
}
"""What ``training.robustness`` measures: :data:`CORRUPTIONS` plus families that training does not draw (kept out
of :data:`CORRUPTIONS` so that the training batches of ``augment.corrupt`` stay what they were)."""


def camera_corruption(x: torch.Tensor, max_severity: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One corruption per image, family uniform over :data:`CORRUPTIONS`, severity uniform in [0, max_severity].

    Returns the corrupted batch and each image's family index into ``list(CORRUPTIONS)``.
    """
    n = x.shape[0]
    family = torch.randint(0, len(CORRUPTIONS), (n,), generator=g, device=x.device)
    t = _uniform(n, 0.0, max_severity, g, x.device)
    out = x.clone()
    for k, fn in enumerate(CORRUPTIONS.values()):
        idx = (family == k).nonzero().squeeze(1)
        if idx.numel():
            out[idx] = fn(x[idx], t[idx], g)
    return out, family


def mixup(
    x: torch.Tensor, targets: torch.Tensor, num_classes: int, alpha: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend the batch with a permutation of itself; returns mixed images and soft targets.

    The weight ``lam`` comes from numpy's Beta sampler seeded by the torch generator (torch's Beta takes no
    generator), so the draw stays reproducible from the one augmentation generator.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device).item())
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=g, device=g.device).to(x.device)
    dist = F.one_hot(targets.long(), num_classes).float() if targets.ndim == 1 else targets.float()
    return lam * x + (1 - lam) * x[perm], lam * dist + (1 - lam) * dist[perm]


class BatchAugmenter:
    """Applies the resolved augmentations to float batches in [0, 1] (before normalisation).

    ``input_size`` (the model's side) scales the pixel sizes; ``num_classes`` sizes mixup's one-hot targets.
    """

    def __init__(self, cfg: AugmentConfig, input_size: int, num_classes: int) -> None:
        self.r = resolve(cfg, input_size)
        self.num_classes = num_classes

    def _apply(self, name, x, fn, g) -> torch.Tensor:
        """Draw the per-sample coin for op ``name``; transform only the selected rows."""
        mask = torch.rand(x.shape[0], generator=g, device=x.device) < self.r.p[name]
        self.last_applied[name] = mask
        if mask.any():
            idx = mask.nonzero().squeeze(1)
            x = x.clone()
            x[idx] = fn(x[idx])
        return x

    def _corrupt(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Camera corruptions; at probability 0 no random number is drawn, so batches match a config without them."""
        self.last_corruption = torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device)
        if self.r.p["corrupt"] <= 0:
            self.last_applied["corrupt"] = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
            return x

        def apply(t: torch.Tensor) -> torch.Tensor:  # runs after _apply stored the mask of the selected rows
            out, family = camera_corruption(t, self.r.max_severity, g)
            self.last_corruption[self.last_applied["corrupt"]] = family
            return out

        return self._apply("corrupt", x, apply, g)

    def __call__(self, x: torch.Tensor, targets: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment ``x`` (B, C, H, W) float in [0, 1]; returns images and targets (soft when mixup fired).

        ``self.last_applied`` holds one boolean mask per op (``mixup``: a 0-dim tensor) for tests and logs;
        ``self.last_corruption`` each image's index into ``list(CORRUPTIONS)``, -1 where none was applied.
        """
        r = self.r
        self.last_applied: dict[str, torch.Tensor] = {}
        x = self._apply("hflip", x, lambda t: t.flip(-1), g)
        x = self._apply("crop", x, lambda t: random_crop(t, r.crop_padding, g), g) if r.crop_padding else x
        x = self._apply("rotate", x, lambda t: rotate(t, r.degrees, g), g)
        x = self._apply("jitter", x, lambda t: color_jitter(t, r.brightness, r.contrast, r.saturation, r.hue, g), g)
        x = self._apply("noise", x, lambda t: add_noise(t, _uniform(len(t), *r.noise_sigma, g, t.device), g), g)
        x = self._apply("cutout", x, lambda t: cutout(t, r.cutout_size, g), g) if r.cutout_size else x
        x = self._corrupt(x, g)
        fire = torch.rand((), generator=g, device=x.device) < r.p["mixup"]
        self.last_applied["mixup"] = fire
        if bool(fire) and x.shape[0] > 1:
            x, targets = mixup(x, targets, self.num_classes, r.mixup_alpha, g)
        return x, targets


def class_sample_weights(labels: np.ndarray, num_classes: int, mode: str) -> np.ndarray | None:
    """Per-sample weights for oversampling: ``balanced`` (DCRNet: 1/n_c, every class drawn equally often),
    ``sqrt`` (1/sqrt(n_c)), ``random`` (None: a plain shuffle)."""
    if mode == "random":
        return None
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    per_class = 1.0 / np.where(counts > 0, counts, np.inf)
    if mode == "sqrt":
        per_class = np.sqrt(per_class)
    elif mode != "balanced":
        raise ValueError(f"unknown sampler {mode!r}; choose one of ['random', 'balanced', 'sqrt']")
    return per_class[labels]
