"""The ablation page and knock-outs, and the model card's facts (counted, read from files, never typed in)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard import ablation, model_card


def test_ablation_page_compares_full_and_ablated_on_the_sample(dashboard_env, open_page) -> None:
    at = open_page("ablation")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.toggle(key="abl_cbam_default").disabled and at.toggle(key="abl_tr_default").disabled  # FerNet has neither
    table = at.dataframe[0].value
    assert list(table["variant"]) == ["full", "ablated"]
    assert np.allclose(table.iloc[0, 4:].astype(float), table.iloc[1, 4:].astype(float))  # nothing switched off yet
    at.toggle(key="abl_clahe_default").set_value(True).run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert not np.allclose(table.iloc[0, 4:].astype(float), table.iloc[1, 4:].astype(float))  # CLAHE changed the input
    assert any("No `ablation.json`" in i.value for i in at.info)


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


def test_knockout_bypasses_cbam_and_keeps_every_other_weight() -> None:
    from core.engine import InferenceEngine
    from core.models import create_model

    torch.manual_seed(0)
    engine = InferenceEngine(create_model("default", cbam=True), device="cpu")
    model, removed = ablation.knockout(engine, ("cbam",))
    assert removed == ["cbam"]
    assert not any(type(m).__name__ == "CBAM" for m in model.modules())
    kept = model.state_dict()
    for k, v in engine.model.state_dict().items():
        if not k.startswith("cbam."):
            assert torch.equal(kept[k], v)
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert not torch.allclose(model(x), engine.model(x))
    assert any(type(m).__name__ == "CBAM" for m in engine.model.modules())  # the cached engine is untouched


def test_switches_and_checkpoint_matching(tmp_path: Path) -> None:
    hafem = {"cbam": True, "transformer_layers": 1}
    sw = ablation.Switches(cbam=False, transformer=True, compound_loss=False, clahe=True)
    assert sw.removed(hafem) == ("cbam",) and sw.overrides(hafem) == {"cbam": False}
    assert sw.removed({"cbam": False}) == () and sw.preprocess() == ("clahe",)
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
