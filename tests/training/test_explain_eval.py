"""The explanation benchmark on real FER2013 faces with the shipped model: the instrument, the statistics, the doc."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats as sps

from core.explain import crops_to_input, make_baseline, perturbation_curves
from core.models import create_model
from core.models.weights import shipped_weights
from training import explain_eval as X


@pytest.fixture(scope="module")
def model():
    path = shipped_weights("default")
    assert path is not None, "the default weights are shipped with the repo"
    return create_model("default", weights=path).eval()


@pytest.fixture(scope="module")
def fer_rows(shared_datasets: Path) -> SimpleNamespace:
    """The first 60 rows of fer2013.csv.gz: images, FER2013 labels and row ids."""
    images, labels = [], []
    with gzip.open(shared_datasets / "fer2013" / "fer2013.csv.gz", "rt") as fh:
        next(fh)
        for line, _ in zip(fh, range(60), strict=False):
            label, pixels, _usage = line.strip().split(",")
            labels.append(int(label))
            images.append(np.array(pixels.split(), dtype=np.uint8).reshape(48, 48))
    return SimpleNamespace(images=np.stack(images), labels=np.array(labels), ids=np.arange(len(labels)))


def _occlusion_oracle(model, x: torch.Tensor, target: int, patch: int = 6) -> np.ndarray:
    """Map of how much the target probability drops when each patch alone takes the blur baseline."""
    base = make_baseline(x, "blur")
    h = x.shape[-1]
    cells = [(r, c) for r in range(0, h, patch) for c in range(0, h, patch)]
    batch = x.repeat(len(cells), 1, 1, 1)
    for k, (r, c) in enumerate(cells):
        batch[k, :, r : r + patch, c : c + patch] = base[0, :, r : r + patch, c : c + patch]
    with torch.inference_mode():
        p0 = torch.softmax(model(x), 1)[0, target]
        p = torch.softmax(model(batch), 1)[:, target]
    out = np.zeros((h, h), np.float32)
    for k, (r, c) in enumerate(cells):
        out[r : r + patch, c : c + patch] = float(p0 - p[k])
    return out


def test_deletion_ranks_an_occlusion_oracle_above_its_reverse(model, fer_rows) -> None:
    """The instrument: removing the patches that matter most first must lower the curve faster than removing
    them last. The oracle is measured by occlusion, independently of any explainer."""
    x = crops_to_input(model, fer_rows.images[:4])
    with torch.inference_mode():
        targets = model(x).argmax(1).numpy()
    for i in range(len(x)):
        oracle = _occlusion_oracle(model, x[i : i + 1], int(targets[i]))
        maps = np.stack([oracle, -oracle])
        auc = perturbation_curves(model, x[i : i + 1].repeat(2, 1, 1, 1), maps, targets[i], steps=8).auc
        assert auc[0] < auc[1], (i, auc)


def test_stratified_rows_takes_each_class_evenly_and_caps_at_its_size() -> None:
    labels = np.array([0] * 10 + [1] * 2 + [2] * 5 + [0] * 3)
    rows = X.stratified_rows(labels, 4)
    assert np.all(np.diff(rows) > 0)
    assert np.bincount(labels[rows]).tolist() == [4, 2, 4]
    assert set(rows[labels[rows] == 0]) >= {0, 19}  # spread from the first to the last row of the class


def test_mean_ci_brackets_the_mean_and_matches_scipys_bootstrap() -> None:
    v = np.random.default_rng(3).gamma(2.0, 0.1, size=80)
    ours = X.mean_ci(v, n_resamples=4000, seed=1)
    ref = sps.bootstrap((v,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(2))
    assert ours["value"] == pytest.approx(v.mean())
    assert ours["ci_low"] < ours["value"] < ours["ci_high"]
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert ours["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=0.1 * width)
    assert ours["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=0.1 * width)
    paired = X.mean_ci(v + 1.0, n_resamples=500, seed=1, paired_with=v)
    assert paired["value"] == pytest.approx(1.0) and paired["ci_high"] - paired["ci_low"] < 1e-9
    assert X.mean_ci([np.nan, np.nan])["value"] is None


@pytest.fixture(scope="module")
def result(model, fer_rows) -> dict:
    d = X.evaluate_explanations(
        model, fer_rows, methods=["gradcam", "eigencam", "region_shap"], per_class=1, steps=4,
        region_evals=16, n_resamples=200,
    )  # fmt: skip
    d["meta"] = {
        "command": "python -m training.explain_eval --per-class 1", "git_commit": None, "date": "today",
        "model": "default", "weights_sha256": None, "data": "fer2013", "split": "first rows", "per_class": 1,
        "pixel_per_class": 1, "n_images": len(d["subset"]["rows"]), "n_pixel_shap": 0, "steps": 4,
        "region_evals": 16, "pixel_evals": 300, "n_resamples": 200,
    }  # fmt: skip
    return d


def test_results_have_every_field_and_intervals_bracket_the_estimates(result, fer_rows) -> None:
    json.dumps(result, allow_nan=False)  # JSON-ready: no numpy types, no NaN
    n = len(np.unique(fer_rows.labels))
    assert len(result["subset"]["rows"]) == n and len(result["subset"]["labels"]) == n
    assert [r["method"] for r in result["methods"]] == ["gradcam", "eigencam", "region_shap"]
    entries = []
    for r in result["methods"]:
        assert r["n"] == n and r["signed"] == (r["method"] == "region_shap")
        for key in ("deletion_auc", "insertion_auc", "ins_minus_del", *(f"deletion_gain_{k}" for k in X.RANDOM_REFS)):
            entries.append(r[key])
        assert 0 <= r["deletion_auc"]["value"] <= 1 and 0 <= r["insertion_auc"]["value"] <= 1
    for rows in result["au_agreement"].values():
        assert sum(row["n"] for row in rows) == n
        entries += [row["lift"] for row in rows if row["lift"]["value"] is not None]
    for e in entries:
        assert e["ci_low"] - 1e-12 <= e["value"] <= e["ci_high"] + 1e-12, e
    scores = {r["method"]: r["ins_minus_del"]["value"] for r in result["methods"]}
    assert [scores[m] for m in result["ranking"]] == sorted(scores.values(), reverse=True)


def test_doc_section_is_replaced_between_markers_and_prose_kept(result, tmp_path: Path) -> None:
    doc = tmp_path / "explanations.md"
    doc.write_text("# Explanations\n\nProse before.\n\n## Later\n\nProse after.\n")
    X.update_doc(result, doc)
    X.update_doc(result, doc)  # idempotent: one section, not two
    text = doc.read_text()
    assert text.count(X.BEGIN) == text.count(X.END) == 1
    assert "Prose before." in text and "Prose after." in text
    section = text.split(X.BEGIN)[1].split(X.END)[0]
    for r in result["methods"]:
        assert f"| {r['method']} |" in section
        assert f"{r['deletion_auc']['value']:.3f} [{r['deletion_auc']['ci_low']:.3f}," in section
    assert result["meta"]["command"] in section


def test_panel_line_quotes_the_method_or_says_not_measured(result) -> None:
    from dashboard.explain_quality import faithfulness_line

    r = next(r for r in result["methods"] if r["method"] == "gradcam")
    line = faithfulness_line(result, "gradcam")
    assert f"{r['deletion_auc']['value']:.2f}" in line and f"{r['insertion_auc']['value']:.2f}" in line
    missing = faithfulness_line(result, "layercam")
    assert "not measured" in missing and "training.explain_eval --methods layercam" in missing
    assert "not measured" in faithfulness_line(None, "gradcam")
