"""The ablation page and knock-outs, and the model card's facts (counted, read from files, never typed in)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard import ablation, model_card


def _probs(table):
    """The class-probability columns (7 or 8, by the model), in the table's order."""
    from core.labels import EMOTIONS_8

    return table[[c for c in table.columns if c in EMOTIONS_8]].astype(float).to_numpy()


def test_ablation_page_compares_full_and_ablated_on_the_sample(dashboard_env, open_page, monkeypatch, tmp_path):
    from training import ablate as A

    monkeypatch.setattr(A, "SHIPPED_LADDER", tmp_path / "no_ladder")  # a fresh clone without the ladder's rungs
    at = open_page("ablation")
    assert not at.exception and not at.error, [e.value for e in at.error]
    cbam, tr = at.toggle(key="abl_cbam_default"), at.toggle(key="abl_tr_default")
    assert not cbam.disabled and cbam.value and not tr.disabled and tr.value  # the hybrid default has both parts
    from core.models.weights import shipped_weights

    loss = ablation.trained_loss(shipped_weights("default"))
    assert at.toggle(key="abl_loss_default").value == (loss == "compound")  # starts at how the weights were trained
    table = at.dataframe[0].value
    assert list(table["variant"]) == ["full", "ablated"]
    assert np.allclose(_probs(table)[0], _probs(table)[1])
    assert (table["Δ p(reference label)"] == 0).all()
    at.toggle(key="abl_clahe_default").set_value(True).run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    probs = _probs(table)
    # CLAHE changed the input; only a face the model is certain of (p > 0.999) may round to the same row
    assert not np.allclose(probs[0], probs[1]) or probs[0].max() > 0.999
    assert np.allclose(probs, np.round(probs, 3))  # rounded for reading
    k = int(probs[0].argmax())
    assert table["Δ p(reference label)"].iloc[1] == pytest.approx(round(probs[1, k] - probs[0, k], 3), abs=1.5e-3)
    # a live knock-out: CBAM switched off (identity in its place) changes the trained model's answer
    at.toggle(key="abl_clahe_default").set_value(False)
    at.toggle(key="abl_cbam_default").set_value(False).run()
    assert not at.exception and not at.error
    probs = _probs(at.dataframe[0].value)
    assert not np.allclose(probs[0], probs[1], atol=2e-3)
    shown = [i.value for i in at.info]
    assert any("python -m training.ablate --ladder hafem_lite" in v and "--export" in v for v in shown)
    assert any(c.startswith("what the model sees") for img in at.image for c in img.captions)


def _fake_ladder(folder: Path) -> None:
    """Four hafem_lite rungs (random init, distinct seeds) with the sidecars training.ablate --export writes."""
    from core.models import create_model, save_weights

    folder.mkdir(parents=True)
    for i, (rung, over, loss) in enumerate(
        [
            ("lite_trunk", {"cbam": False, "transformer": False}, "ce"),
            ("lite_cbam", {"cbam": True, "transformer": False}, "ce"),
            ("lite_transformer", {"cbam": True, "transformer": True}, "ce"),
            ("lite_compound", {"cbam": True, "transformer": True}, "compound"),
        ]
    ):
        torch.manual_seed(i)
        model = create_model("hafem_lite", **over)
        meta = {"config": {"model": "hafem_lite", "model_overrides": over, "loss": {"name": loss}}}
        save_weights(model.half(), folder / f"{rung}.safetensors", meta)


def test_ablation_page_shows_knock_outs_beside_retrained_rungs(dashboard_env, open_page, monkeypatch, tmp_path):
    from training import ablate as A

    _fake_ladder(tmp_path / "ladder")
    monkeypatch.setattr(A, "SHIPPED_LADDER", tmp_path / "ladder")
    at = open_page("ablation")
    assert not at.exception and not at.error, [e.value for e in at.error]
    parts = [m.value for m in at.markdown if m.value.startswith("**")]
    assert parts == ["**CBAM**", "**Transformer**", "**Compound loss (a loss cannot be knocked out)**"]
    cbam = at.dataframe[1].value
    assert list(cbam["variant"]) == [
        "lite_cbam (with CBAM)",
        "lite_cbam, CBAM knocked out",
        "lite_trunk (retrained without)",
    ]
    probs = _probs(cbam)
    assert not np.allclose(probs[0], probs[1]) and not np.allclose(probs[1], probs[2])
    assert len(at.dataframe[3].value) == 2  # compound loss: with / retrained without
    assert not any("not in" in i.value for i in at.info)


def test_ablation_report_from_training_is_rendered(dashboard_env, open_page) -> None:
    cell = {"mean": 0.5, "std": None, "ci_low": None, "ci_high": None, "values": [0.5]}
    metrics = ("accuracy", "macro_f1", "weighted_f1", "roc_auc_macro", "ece")
    meta = {"seeds": [0], "limit": 64, "eval_limit": None, "epochs": 1, "overrides": [], "command": "x"}
    meta.update(git_commit=None, date="2026-01-01", splits=["test"])
    summary = [{"rung": "default", "seeds": [0], "splits": {"test": dict.fromkeys(metrics, cell)}}]
    report = {"meta": meta, "summary": summary, "comparisons": []}
    (dashboard_env / "abl").mkdir()
    (dashboard_env / "abl" / "ablation.json").write_text(json.dumps(report))
    at = open_page("ablation")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("| `default` | 50.00 |" in m.value for m in at.markdown)


def test_compare_table_and_trained_loss_by_hand(tmp_path: Path) -> None:
    ref, other = np.array([0.1, 0.7, 0.2]), np.array([0.3, 0.3, 0.4])
    table = ablation.compare_table({"a": [ref], "b": [other]}, ("x", "y", "z"), decimals=2)
    assert list(table["label"]) == ["y", "z"] and list(table["confidence"]) == [0.7, 0.4]
    assert list(table["Δ p(reference label)"]) == [0.0, -0.4]  # p_b(y) - p_a(y): the reference's label
    w = tmp_path / "w.safetensors"
    w.write_bytes(b"")
    assert ablation.trained_loss(w) is None
    w.with_suffix(".json").write_text(json.dumps({"config": {"loss": {"name": "compound"}}}))
    assert ablation.trained_loss(w) == "compound" and ablation.trained_loss(None) is None


def test_switches_and_checkpoint_matching(tmp_path: Path) -> None:
    hafem = {"cbam": True, "transformer": True}
    sw = ablation.Switches(cbam=False, transformer=True, compound_loss=False, clahe=True)
    assert sw.removed(hafem) == ("cbam",) and sw.overrides(hafem) == {"cbam": False}
    assert sw.removed({"cbam": False, "transformer": False}) == () and sw.preprocess() == ("clahe",)
    run = tmp_path / "abl" / "seed0"
    run.mkdir(parents=True)
    (run / "best.safetensors").write_bytes(b"")
    cfg = {"model": "hafem_compact", "model_overrides": {"cbam": False}, "loss": {"name": "ce"}}
    (run / "best.json").write_text(json.dumps({"config": cfg}))
    assert (
        ablation.find_checkpoint(tmp_path, "hafem_compact", {"cbam": False}, compound_loss=False)
        == run / "best.safetensors"
    )
    assert ablation.find_checkpoint(tmp_path, "hafem_compact", {"cbam": False}, compound_loss=True) is None
    assert ablation.find_checkpoint(tmp_path, "dcrnet", {"cbam": False}, compound_loss=False) is None


def test_model_card_counts_parameters_and_never_counts_random_init_results(
    results_pair, dashboard_env, open_page
) -> None:
    shutil.copy(results_pair[0], dashboard_env / "r.json")
    at = open_page("model_card")
    assert not at.exception and not at.error, [e.value for e in at.error]
    from core.models import create_model

    params = sum(p.numel() for p in create_model("default").parameters())
    assert next(m for m in at.metric if m.label == "Parameters").value == f"{params / 1e6:.2f} M"
    claims = at.dataframe[-1].value
    assert len(claims) == len(model_card.load_claims())
    accuracy_claims = claims[claims["claim"].str.contains("accuracy")]
    assert (accuracy_claims["ferlens measured"] == "not measured yet").all()
    assert any("Limitations" == s.value for s in at.subheader)
    from core.models.weights import read_meta, shipped_weights

    if shipped_weights("default") is not None:  # a fresh clone has no runs/: the sidecar's scores are shown
        recorded = model_card.sidecar_scores(read_meta(shipped_weights("default")))
        shown = [df.value for df in at.dataframe if "command" in df.value.columns]
        assert len(shown) == 1 and shown[0].equals(recorded) and len(recorded) >= 3
        assert recorded["command"].str.contains("training.evaluate").any()


def test_claims_match_trained_results_by_rung(results_pair) -> None:
    d = json.loads(results_pair[0].read_text())
    d["meta"].update(rung="ladder_full", weights="runs/x/best.safetensors", model="hafem_compact")
    table = model_card.claims_table([d])
    row = table[table["claim"].str.startswith("ablation ladder: full")].iloc[0]
    assert row["ferlens measured"].startswith(f"{100 * d['metrics']['accuracy']['value']:.1f} %")
    other = table[table["claim"].str.startswith("ablation ladder: ResNet")].iloc[0]
    assert other["ferlens measured"] == "not measured yet"


@pytest.mark.parametrize("claim", model_card.load_claims(), ids=lambda c: c["id"])
def test_every_claim_names_its_source_in_docs_papers(claim: dict) -> None:
    papers = (model_card.REPO_ROOT / "docs" / "papers.md").read_text()
    assert claim["source"].startswith("docs/papers.md")
    value = claim["claimed"]
    shown = {"fraction": f"{100 * value:.1f}", "count": f"{value / 1e6:.1f}", "fps": f"{value:g}"}[claim["unit"]]
    assert shown in papers, f"{claim['id']}: {shown} not found in docs/papers.md"
