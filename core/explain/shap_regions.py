"""AU-region SHAP: Shapley values with facial action-unit regions as the players.

A coalition keeps its regions and replaces the others by a baseline (blurred crop or its mean); the value is
the model's output for the target class. Exact over all ``2^n`` coalitions when affordable (identical masked
inputs scored once), else antithetic permutation sampling; efficiency holds exactly in both modes.
Details in docs/explanations.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.explain._common import Forward, as_batch, make_baseline, model_device, scorer, targets_or_predicted

log = logging.getLogger(__name__)

__all__ = ["RegionShapResult", "region_shap", "region_value_map", "shapley_exact", "REST"]

REST = "rest"
"""Name of the extra player covering every pixel outside the AU regions (``rest=True``)."""


@dataclass(frozen=True)
class RegionShapResult:
    """Per-region Shapley values for one face.

    Attributes:
        names: player names, in order (the regions, then ``"rest"`` if asked for).
        values, stderr: ``(n,)`` Shapley value of each player in units of ``output``, and its standard error
            (zeros when ``exact``: all ``2^n`` coalitions scored).
        f_x, f_baseline: the model's output for ``target`` with every player present, and with none.
        n_evals: model evaluations spent.
        masks: ``(n, H, W)`` bool masks of the players, at the input's size (for maps and overlays).
    """

    names: tuple[str, ...]
    values: np.ndarray
    stderr: np.ndarray
    f_x: float
    f_baseline: float
    target: int
    exact: bool
    n_evals: int
    output: str
    masks: np.ndarray

    def as_dict(self) -> dict[str, float]:
        """``{region: value}``, ordered as the players."""
        return {n: float(v) for n, v in zip(self.names, self.values, strict=True)}

    @property
    def efficiency_gap(self) -> float:
        """``sum(values) - (f_x - f_baseline)``: zero up to rounding, by construction."""
        return float(self.values.sum() - (self.f_x - self.f_baseline))

    def pixel_map(self, per_area: bool = True) -> np.ndarray:
        """The values painted on the masks; see :func:`region_value_map`."""
        return region_value_map(self.values, self.masks, per_area=per_area)


def region_value_map(values: np.ndarray, masks: np.ndarray, per_area: bool = True) -> np.ndarray:
    """An ``(H, W)`` float32 map of ``(n,)`` region values on ``(n, H, W)`` boolean masks.

    ``per_area=True`` paints each value divided by its region's area, summed where regions overlap: a density whose
    sum over the crop is ``sum(values)`` (what the deletion curve and AU agreement should consume). ``False`` paints
    the value itself, averaged where regions overlap (what a legend "region X: +0.12" matches visually).
    """
    values = np.asarray(values, dtype=np.float64)
    m = np.asarray(masks, dtype=bool)
    if m.ndim != 3 or len(values) != len(m):
        raise ValueError(f"need (n,) values and (n, H, W) masks, got {values.shape} and {m.shape}")
    mf = m.astype(np.float64)
    if per_area:
        area = np.maximum(mf.sum(axis=(1, 2)), 1.0)
        out = np.tensordot(values / area, mf, axes=1)
    else:
        cover = mf.sum(axis=0)
        out = np.divide(np.tensordot(values, mf, axes=1), cover, out=np.zeros(m.shape[1:]), where=cover > 0)
    return out.astype(np.float32)


def shapley_exact(v: np.ndarray, n: int) -> np.ndarray:
    """Exact Shapley values from the values of all ``2^n`` coalitions (``v[code]``, bit i = player i present).

    ``phi_i = sum_{S not containing i} |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))``.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (1 << n,):
        raise ValueError(f"need {1 << n} coalition values for {n} players, got {v.shape}")
    codes = np.arange(1 << n, dtype=np.int64)
    sizes = np.bitwise_count(codes)
    weight = np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])
    phi = np.empty(n)
    for i in range(n):
        without = codes[(codes >> i) & 1 == 0]
        phi[i] = float((weight[sizes[without]] * (v[without | (1 << i)] - v[without])).sum())
    return phi


def _score_codes(codes: np.ndarray, n: int, x, base, masks, score, target: int, chunk: int) -> tuple[np.ndarray, int]:
    """Model output for each coalition code (bit i = player i present) and the number of forward passes spent.
    Coalitions hiding the same pixels are one input, scored once (once the jaw is absent, whether the lip corners
    inside it are "present" changes nothing)."""
    absent = (codes[:, None] >> np.arange(n, dtype=np.int64)) & 1 == 0  # hidden: pixels of at least one absent region
    hidden = ((torch.from_numpy(absent.astype(np.float32)).to(masks.device) @ masks.flatten(1)) > 0).cpu().numpy()
    unique, inverse = np.unique(np.packbits(hidden, axis=1), axis=0, return_inverse=True)
    first = np.zeros(len(unique), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(codes))[::-1]  # one representative row per distinct input
    scores = np.empty(len(unique))
    h, w = masks.shape[1:]
    for s in range(0, len(unique), chunk):
        rows = torch.from_numpy(hidden[first[s : s + chunk]]).to(x.device).view(-1, 1, h, w)
        scores[s : s + chunk] = score(torch.where(rows, base, x), target)
    return scores[inverse.reshape(-1)], len(unique)


def region_shap(
    model: nn.Module,
    x: torch.Tensor,
    regions: Mapping[str, np.ndarray],
    target: int | None = None,
    *,
    baseline: str | float | torch.Tensor = "blur",
    blur_sigma: float | None = None,
    max_evals: int = 512,
    rest: bool = False,
    output: str = "prob",
    batch_size: int = 64,
    seed: int = 0,
    forward: Forward | None = None,
) -> RegionShapResult:
    """Shapley values of AU regions for one face (``x``: one normalised input; ``target`` None = predicted class).

    Args:
        regions: name -> boolean ``(H, W)`` mask at the input's size, e.g. from
            :func:`core.explain.regions.region_masks_for`. An empty mask is an error (a player that hides
            nothing would get a value of exactly zero and waste evaluations).
        baseline, blur_sigma: what absent regions become (see :func:`core.explain.make_baseline`).
        max_evals: model evaluations allowed; exact when ``2^n <= max_evals``, otherwise permutation sampling.
        rest: add the pixels outside every region as one more player.
        forward: optional faster path to the same model's logits (e.g. ``engine.predict_logits``, ONNX
            Runtime); region SHAP needs outputs only, and its cost is ``n_evals`` forward passes.
    """
    x = as_batch(x)
    if x.shape[0] != 1:
        raise ValueError(f"region_shap explains one face at a time, got a batch of {x.shape[0]}")
    if not regions:
        raise ValueError("region_shap needs at least one region")
    h, w = x.shape[-2:]
    names = list(regions)
    stack = [np.asarray(regions[k], dtype=bool) for k in names]
    for k, m in zip(names, stack, strict=True):
        if m.shape != (h, w):
            raise ValueError(f"region {k!r} mask is {m.shape}, the input is {(h, w)}; resize the masks first")
        if not m.any():
            raise ValueError(f"region {k!r} is empty at {h}x{w}")
    if rest:
        outside = ~np.any(stack, axis=0)
        if outside.any():
            names.append(REST)
            stack.append(outside)
        else:
            log.info("rest player dropped: the regions cover the whole crop")
    n = len(names)
    if max_evals < 2:
        raise ValueError(f"max_evals must be >= 2 (the full and the empty coalition), got {max_evals}")
    x = x.detach().to(model_device(model)).float().clone()  # compose coalitions where the model runs
    base = make_baseline(x, baseline, blur_sigma)
    masks_np = np.stack(stack)
    masks = torch.from_numpy(masks_np.astype(np.float32)).to(x.device)
    score = scorer(model, output=output, batch_size=batch_size, forward=forward)
    tgt = int(targets_or_predicted(model, x, target, forward)[0])
    exact = (1 << n) <= max_evals
    if exact:
        v, n_evals = _score_codes(np.arange(1 << n, dtype=np.int64), n, x, base, masks, score, tgt, batch_size)
        values, stderr = shapley_exact(v, n), np.zeros(n)
        f_x, f_base = float(v[-1]), float(v[0])  # every player present, none
    else:
        values, stderr, n_evals, f_x, f_base = _permutation_shap(
            n, x, base, masks, score, tgt, max_evals, batch_size, seed
        )
    log.debug("region_shap: %d players, %s, %d evals, target %d", n, "exact" if exact else "sampled", n_evals, tgt)
    return RegionShapResult(tuple(names), values, stderr, f_x, f_base, tgt, exact, n_evals, output, masks_np)


def _permutation_shap(n, x, base, masks, score, tgt, max_evals, batch_size, seed):
    """Antithetic permutation sampling: ``(values, stderr, evals, f_x, f_empty)`` within ``max_evals``.

    A permutation adds players one by one; the coalitions it visits are prefixes. Evaluations are counted
    after de-duplication, so permutations are drawn (in antithetic pairs) until the budget would be exceeded.
    """
    rng = np.random.default_rng(seed)
    full = (1 << n) - 1
    seen: set[int] = {0, full}
    perms: list[np.ndarray] = []
    while True:
        p = rng.permutation(n)
        pair = np.stack([p, p[::-1]])
        new = set(np.cumsum(1 << pair[:, :-1], axis=1).ravel().tolist()) - seen  # codes of the proper prefixes
        if perms and len(seen) + len(new) > max_evals:
            break
        seen |= new
        perms.extend(pair)
        if len(perms) >= 4 * max_evals or (len(seen) >= (1 << n) and len(perms) >= 8 * n):
            break  # a cap for budgets that (almost) cover every coalition: further pairs cost nothing new
    if len(seen) > max_evals:
        log.warning("region_shap: one antithetic pair needs %d evaluations, above max_evals=%d", len(seen), max_evals)
    codes = np.array(sorted(seen), dtype=np.int64)  # 0 first, the full coalition last
    scored, n_evals = _score_codes(codes, n, x, base, masks, score, tgt, batch_size)
    order = np.array(perms)
    after = scored[np.searchsorted(codes, np.cumsum(1 << order, axis=1))]  # the value as each player joins
    before = np.concatenate([np.full((len(order), 1), scored[0]), after[:, :-1]], axis=1)
    contrib = np.zeros((len(order), n))
    np.put_along_axis(contrib, order, after - before, axis=1)
    values = contrib.mean(axis=0)
    # antithetic pairs are the independent units
    pairs = contrib.reshape(-1, 2, n).mean(axis=1)
    stderr = pairs.std(axis=0, ddof=1) / math.sqrt(len(pairs)) if len(pairs) > 1 else np.full(n, np.nan)
    return values, stderr, n_evals, float(scored[-1]), float(scored[0])
