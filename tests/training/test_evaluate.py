"""training.evaluate and training.results on real FER2013 rows with a tiny (untrained) model."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn import metrics as skm

from core.models import create_model, save_weights
from training import evaluate as E
from training.config import DataConfig
from training.datasets import load_split
from training.results import ResultsSchemaError, results_problems, validate_results

TINY = {"widths": (8, 16, 32, 64)}
"""FerNet narrow enough to evaluate a few hundred 48 px faces in about a second on 2 cores."""


@pytest.fixture(scope="module")
def faceset(shared_datasets):
    return load_split(DataConfig(dataset="fer2013", root=str(shared_datasets), limit=200), "test")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("fernet_s", **TINY)


@pytest.fixture(scope="module")
def results(model, faceset):
    return E.evaluate_model(model, faceset, batch_size=64, bootstrap=200, seed=0)


def test_results_are_valid_and_consistent_with_the_predictions(results, faceset):
    validate_results(results)
    json.dumps(results, allow_nan=False)
    pr = results["predictions"]
    probs = np.asarray(pr["probs"])
    assert probs.shape == (len(faceset), 7)
    assert pr["id"] == faceset.ids.tolist() and pr["true"] == faceset.labels.tolist()
    assert pr["pred"] == probs.argmax(1).tolist()
    top2 = np.sort(probs, 1)[:, -2:]
    np.testing.assert_allclose(pr["margin"], top2[:, 1] - top2[:, 0], atol=2e-6)
    y, pred = faceset.labels, np.asarray(pr["pred"])
    m = results["metrics"]
    assert m["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, pred))
    f1 = skm.f1_score(y, pred, average="macro", zero_division=0)
    assert m["macro_f1"]["value"] == pytest.approx(f1)
    assert m["accuracy"]["ci_low"] <= m["accuracy"]["value"] <= m["accuracy"]["ci_high"]
    assert np.asarray(results["confusion"]["counts"]).sum() == len(faceset)
    meta = results["meta"]
    assert meta["model"] == "fernet_s" and meta["data"]["split"] == "test" and meta["data"]["n"] == len(faceset)
    assert meta["data"]["source"].startswith("fer2013:")
    assert meta["spec"]["config"]["widths"] == [8, 16, 32, 64]
    assert meta["bootstrap"] == {"n_resamples": 200, "seed": 0, "alpha": 0.05}


def test_hflip_tta_averages_image_and_mirror(model, faceset):
    head = faceset.subset(np.arange(32))
    mirrored = dataclasses.replace(head, images=head.images[:, :, ::-1].copy(), cache={})
    plain = E.predict_probs(model, head)
    mirror = E.predict_probs(model, mirrored)
    tta = E.predict_probs(model, head, tta_hflip=True)
    np.testing.assert_allclose(tta, (plain + mirror) / 2, atol=1e-5)
    assert not np.allclose(plain, mirror, atol=1e-4)  # the check above is not vacuous


def test_class_count_mismatch_is_a_clear_error(faceset):
    with pytest.raises(ValueError, match="8 classes .* num_classes=7"):
        E.evaluate_model(create_model("default", num_classes=8, **TINY), faceset, bootstrap=0)


def test_broken_results_fail_validation_with_messages(results):
    assert results_problems(results) == []
    cases = {
        "missing top-level": lambda d: d.pop("metrics"),
        "metrics.macro_f1": lambda d: d["metrics"]["macro_f1"].pop("ci_low"),
        "ci_low": lambda d: d["metrics"]["accuracy"].update(ci_low=0.9, ci_high=0.1),
        "disagrees with the predictions": lambda d: d["predictions"]["pred"].__setitem__(
            0, (d["predictions"]["pred"][0] + 1) % 7
        ),
        "differ in length": lambda d: d["predictions"]["probs"].pop(),
        "confusion.counts sum": lambda d: d["confusion"]["counts"][0].__setitem__(0, 10_000),
        "meta.weights_sha256": lambda d: d["meta"].update(weights_sha256="abc"),
        "schema is": lambda d: d.update(schema="ferlens.results/0"),
        "summing to 1": lambda d: d["predictions"]["probs"].__setitem__(0, [1.0] * 7),
        "per_class[0].f1_ci_low": lambda d: d["per_class"][0].update(f1_ci_low=0.9, f1_ci_high=0.1),
    }
    for needle, breakit in cases.items():
        d = copy.deepcopy(results)
        breakit(d)
        with pytest.raises(ResultsSchemaError, match="invalid results JSON") as info:
            validate_results(d)
        assert needle in str(info.value), (needle, str(info.value))
    assert results_problems([]) == ["results must be a JSON object, got list"]


def test_per_class_intervals_are_written_and_optional_for_older_files(results):
    for row in results["per_class"]:
        for m in ("precision", "recall", "f1"):
            lo, hi = row[f"{m}_ci_low"], row[f"{m}_ci_high"]
            assert lo is None or 0 <= lo <= hi <= 1, (row["name"], m, lo, hi)
    assert any(row["f1_ci_low"] is not None and row["f1_ci_low"] < row["f1_ci_high"] for row in results["per_class"])
    old = copy.deepcopy(results)
    for row in old["per_class"]:
        for key in [k for k in row if "_ci_" in k]:
            row.pop(key)
    assert results_problems(old) == []


def test_cli_writes_results_and_prints_a_summary(tmp_path, shared_datasets, capsys):
    torch.manual_seed(1)
    weights = tmp_path / "tiny.safetensors"
    m = create_model("fernet_s", **TINY)
    # The sidecar tells the CLI how the weights were built: no --model-option needed to rebuild it.
    save_weights(
        m,
        weights,
        meta={"spec": m.spec.to_dict(), "config": {"model_overrides": {"widths": [8, 16, 32, 64]}}},
    )
    out = tmp_path / "r.json"
    argv = [
        "--model",
        "fernet_s",
        "--weights",
        str(weights),
        "--data",
        "fer2013",
        "--root",
        str(shared_datasets),
    ]
    argv += ["--split", "val", "--limit", "120", "--bootstrap", "100", "--out", str(out), "--tta-hflip"]
    assert E.main(argv) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "macro-F1" in text and "ECE" in text and "n=120" in text
    d = E.load_results(out)
    assert d["meta"]["weights_sha256"] == E.sha256_file(weights) and d["meta"]["tta_hflip"] is True
    assert d["meta"]["data"]["limit"] == 120 and d["meta"]["data"]["split"] == "val"
    assert "--tta-hflip" in d["meta"]["command"]
    # the evaluated model is the saved one: same probabilities as evaluating the in-memory model
    fs = load_split(DataConfig(dataset="fer2013", root=str(shared_datasets), limit=120), "val")
    np.testing.assert_allclose(d["predictions"]["probs"], E.predict_probs(m, fs, tta_hflip=True), atol=2e-6)


def test_cli_bad_weights_give_one_line_errors(tmp_path, shared_datasets, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"x": Evil()}))
    wrong = tmp_path / "wrong.safetensors"
    save_file({"head.weight": torch.zeros(3, 3)}, str(wrong))
    base = ["--model", "default", "--data", "fer2013", "--root", str(shared_datasets), "--limit", "10",
            "--out", str(tmp_path / "x.json")]  # fmt: skip
    for path, needle in (
        (bad, "could not be loaded safely"),
        (wrong, "does not fit"),
        (tmp_path / "no.pt", "not found"),
    ):
        assert E.main([*base, "--weights", str(path)]) == 2
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and lines[0].startswith("error: WeightsError") and needle in lines[0], lines
        err = lines[0]
        assert "pwned" not in err
    assert not (tmp_path / "x.json").exists()
    assert E.main(["--model", "nope", "--data", "fer2013", "--out", str(tmp_path / "y.json")]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_compare_mcnemar_matches_on_ids(results, faceset, tmp_path, capsys):
    torch.manual_seed(5)
    other = E.evaluate_model(create_model("fernet_s", **TINY), faceset.subset(np.arange(150)), bootstrap=50)
    r = E.compare_results(results, other, n_resamples=200)
    assert r["data"]["n_common"] == 150
    ca = np.asarray(results["predictions"]["pred"][:150]) == faceset.labels[:150]
    cb = np.asarray(other["predictions"]["pred"]) == faceset.labels[:150]
    assert (r["mcnemar"]["b"], r["mcnemar"]["c"]) == (int((ca & ~cb).sum()), int((~ca & cb).sum()))
    assert r["a"]["accuracy"] == pytest.approx(ca.mean()) and r["b"]["accuracy"] == pytest.approx(cb.mean())
    same = E.compare_results(results, results)
    assert same["mcnemar"]["p_value"] == 1.0 and same["accuracy_diff"]["diff"] == 0.0
    moved = copy.deepcopy(other)
    moved["meta"]["data"]["split"] = "val"
    with pytest.raises(ValueError, match="different data"):
        E.compare_results(results, moved)
    # pair_key says beforehand which results the dashboard may offer for comparison
    assert E.pair_key(results) == E.pair_key(other) != E.pair_key(moved)
    eight = copy.deepcopy(other)
    eight["class_names"] = [*other["class_names"], "contempt"]
    assert E.pair_key(eight) != E.pair_key(other)
    # the CLI prints both accuracies and the test it used
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    E.write_results(results, a)
    other["meta"].update(weights="runs/x/best.safetensors", weights_sha256="abcdef12" + "0" * 56, tta_hflip=True)
    E.write_results(other, b)
    assert E.main(["compare", str(a), str(b), "--out", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    line_a, line_b = out.splitlines()[:2]  # both sides named alike: model, weights and hash, TTA
    assert line_b.startswith("B fernet_s (runs/x/best.safetensors sha256:abcdef12, hflip TTA)")
    assert line_a.startswith(f"A {results['meta']['model']} (") and "hflip" not in line_a
    assert "McNemar (exact)" in out or "McNemar (chi2)" in out
    assert json.loads((tmp_path / "c.json").read_text())["data"]["n_common"] == 150


def test_schema_doc_names_every_field_the_validator_checks():
    from training import results as R

    doc = (Path(__file__).resolve().parents[2] / "docs" / "results-schema.md").read_text()
    assert R.SCHEMA in doc
    fields = [*R.TOP_KEYS, *R.REQUIRED_METRICS, *R.PREDICTION_COLUMNS, *R._META_FIELDS]
    undocumented = [f for f in fields if f"`{f}`" not in doc]
    assert not undocumented, f"docs/results-schema.md does not describe {undocumented}"


def test_a_7_class_model_is_scored_on_ferplus_8_classes_with_contempt_as_errors(model, shared_datasets):
    fs8 = load_split(DataConfig(dataset="ferplus", root=str(shared_datasets), num_classes=8, limit=300), "test")
    assert fs8.num_classes == 8 and (fs8.labels == 7).any()  # the slice holds contempt rows
    d = E.evaluate_model(model, fs8, batch_size=64, bootstrap=0)
    validate_results(d)
    probs = np.asarray(d["predictions"]["probs"])
    assert probs.shape == (len(fs8), 8) and np.all(probs[:, 7] == 0)
    np.testing.assert_allclose(probs[:, :7], E.predict_probs(model, fs8), atol=2e-6)
    assert d["meta"]["missing_classes"] == ["contempt"] and "contempt" in E.summary_line(d)
    pred = probs.argmax(1)
    assert d["metrics"]["accuracy"]["value"] == pytest.approx(float((pred == fs8.labels).mean()))
    assert d["per_class"][7]["name"] == "contempt" and d["per_class"][7]["recall"] == 0.0
    # classes that are not the model's leading ones are refused, not silently remapped
    with pytest.raises(ValueError, match="classes"):
        E.evaluate_model(
            create_model("default", num_classes=8, **TINY),
            load_split(DataConfig(dataset="fer2013", root=str(shared_datasets), limit=20), "test"),
            bootstrap=0,
        )


def test_cli_defaults_to_shipped_weights_and_a_runs_eval_path(tmp_path, shared_datasets, monkeypatch, capsys):
    from core.models.weights import shipped_weights

    monkeypatch.setenv("FERLENS_RUNS", str(tmp_path))
    argv = ["--model", "fernet_s", "--data", "fer2013", "--root", str(shared_datasets), "--split", "test",
            "--limit", "30", "--bootstrap", "0"]  # fmt: skip
    assert shipped_weights("fernet_s") is None  # no weights ship for it: the default names the fix, as the engine
    assert E.main(argv) == 2
    err = capsys.readouterr().err
    assert "WeightsError: no weights are shipped for model 'fernet_s'" in err and "'none' for a random init" in err
    assert E.main([*argv, "--weights", "none"]) == 0
    out = tmp_path / "eval" / "fernet_s-fer2013-test-n30.json"
    assert f"wrote {out}" in capsys.readouterr().out
    d = E.load_results(out)
    assert d["meta"]["weights"] is None and d["meta"]["data"]["n"] == 30
    assert E.default_out("default", "folder:/data/raf db/", "test", tta=True).name == "default-raf_db-test-tta.json"


def test_evaluate_and_the_engine_build_models_by_the_same_rules(tmp_path):
    """One builder (create_model reads the sidecar): same model from a checkpoint, same typed errors."""
    from core.engine import InferenceEngine
    from core.models import WeightsError

    torch.manual_seed(5)
    trained = create_model("fernet_s", num_classes=8, **TINY)
    path = tmp_path / "best.safetensors"
    save_weights(
        trained, path, {"spec": trained.spec.to_dict(), "config": {"model_overrides": {"widths": [8, 16, 32, 64]}}}
    )
    evaluated, wpath = E.build_model("fernet_s", str(path), None, {})
    served = InferenceEngine("fernet_s", weights=path, device="cpu", backend="torch").model
    assert wpath == path and evaluated.num_classes == served.num_classes == 8
    for net in (evaluated, served):
        assert all(torch.equal(v, trained.state_dict()[k]) for k, v in net.state_dict().items())
    for weights, match in (
        ("default", "no weights are shipped for model 'fernet_s'"),
        (tmp_path / "x.safetensors", "not found"),
    ):
        with pytest.raises(WeightsError, match=match):
            E.build_model("fernet_s", str(weights), None, {})
        with pytest.raises(WeightsError, match=match):
            InferenceEngine("fernet_s", weights=weights, device="cpu", backend="torch")
