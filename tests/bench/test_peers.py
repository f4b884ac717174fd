"""bench/peers.py without the peer venv: interleaving, aggregation, the worker protocol, JSON -> docs, the
corrupted pixels, and the error that names the install command. Nothing here needs tensorflow or a network."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as sps

from bench import peers as P
from bench.common import replace_section
from core.models.weights import shipped_weights

COMMITTED = P.RESULTS


def _acc(v: float, lo: float, hi: float) -> dict:
    return {"value": v, "ci_low": lo, "ci_high": hi}


def fake_result() -> dict:
    """A peers.json with distinctive figures, shaped as bench/peers.py writes it."""
    tools = ("fer", "default", "default_fer2013")
    acc = {
        "fer": 0.4321,
        "default": 0.6101,
        "default_tta": 0.6202,
        "default_contempt_dropped": 0.6151,
        "default_fer2013": 0.6882,
        "default_fer2013_tta": 0.7008,
    }
    accuracy: dict = {"n": 3573, "ids_sha256": "x", "loadavg_1min": [1.0, 1.1]}
    for k, v in acc.items():
        accuracy[k] = {"n": 3573, "accuracy": _acc(v, v - 0.0111, v + 0.0122), "macro_f1": _acc(v - 0.1, 0.3, 0.4)}
    accuracy["default"]["contempt_answers"] = 17
    for m in ("default", "default_fer2013"):
        accuracy[f"{m}_vs_fer"] = {
            "mcnemar": {"p_value": 1.5e-20},
            "accuracy_diff": {"diff": acc[m] - acc["fer"], "ci_low": 0.1, "ci_high": 0.3},
        }
    rate = {"median": 41.7, "mean": 42.3, "ci_low": 39.1, "ci_high": 45.5, "runs": [41.7, 42.9]}
    conditions = [{"corruption": "clean", "severity": 0.0, **{t: _acc(0.5, 0.45, 0.55) for t in tools}}]
    conditions.append(
        {"corruption": "noise", "severity": 1.0, **{t: {**_acc(0.25, 0.2, 0.3), "retention": 0.5} for t in tools}}
    )
    summary = {t: {"clean": _acc(0.5, 0.45, 0.55), "mean_retention": 0.5 + i / 1000} for i, t in enumerate(tools)}
    return {
        "command": "python bench/peers.py --out bench/results/peers.json",
        "date": "2026-11-30T22:00:00+00:00",
        "machine": {"cpu": "Test CPU", "cores": 2},
        "loadavg_start": [3.25, 3.0, 3.0],
        "loadavg_end": [4.75, 4.0, 4.0],
        "wall_s": 600.0,
        "peer": {
            "versions": {"fer": "22.5.1", "tensorflow-cpu": "2.15.1"},
            "install": {"command": "python bench/peers.py --install", "wall_s": 123.0, "bytes": 3 * 2**30},
            "requirements": "bench/peers-requirements.txt",
        },
        "ferlens": {"models": {"default": {}, "default_fer2013": {}}},
        "accuracy": accuracy,
        "fps": {
            "video": "single_face.mp4",
            "fer": {**rate, "median": 12.3, "frames": 72, "faces_per_run": [70, 70]},
            "ferlens": {**rate, "frames": 72, "faces_per_run": [72, 72]},
            "ratio_ferlens_over_fer": {**rate, "median": 3.4},
            "ferlens_settings": {
                "model": "default",
                "backend": "onnx",
                "tta": "hflip",
                "redetect_every": 5,
                "torch_threads": 1,
            },
            "loadavg_1min": [1.0, 1.2, 1.3],
        },
        "robustness": {"n": 1000, "severities": [0.5, 1.0], "conditions": conditions, "summary": summary},
        "bootstrap": {"n_resamples": 1000},
    }


# ------------------------------------------------------------------------------------ interleaving
def test_schedule_alternates_the_order_each_round():
    order = P.schedule(["fer", "ferlens"], 4)
    assert order == [
        (0, "fer"), (0, "ferlens"), (1, "ferlens"), (1, "fer"),
        (2, "fer"), (2, "ferlens"), (3, "ferlens"), (3, "fer"),
    ]  # fmt: skip
    firsts = [order[2 * r][1] for r in range(4)]
    assert firsts.count("fer") == firsts.count("ferlens") == 2


def test_interleave_runs_in_schedule_order_and_keeps_each_tools_results():
    calls: list[str] = []

    def run(name: str, value: int):
        def f() -> dict:
            calls.append(name)
            return {"frames": value}

        return f

    out = P.interleave({"a": run("a", 1), "b": run("b", 2), "c": run("c", 3)}, 3)
    assert calls == [n for _, n in P.schedule(["a", "b", "c"], 3)]
    assert [r["frames"] for r in out["b"]] == [2, 2, 2] and [r["round"] for r in out["c"]] == [0, 1, 2]
    assert len(out["loadavg_1min"]) == 3 * 3 + 1


def test_fps_summary_pairs_rounds_and_matches_scipy():
    fer = [{"frames": 72, "faces": 70, "seconds": s} for s in (2.0, 2.4, 1.8)]
    fl = [{"frames": 72, "faces": 72, "seconds": s} for s in (0.9, 1.0, 0.6)]
    out = P.fps_summary({"fer": fer, "ferlens": fl, "loadavg_1min": [1.0] * 7})
    fer_fps = np.array([36.0, 30.0, 40.0])
    assert out["fer"]["median"] == 36.0 and out["fer"]["runs"] == [36.0, 30.0, 40.0]
    lo, hi = sps.t.interval(0.95, 2, loc=fer_fps.mean(), scale=sps.sem(fer_fps))
    assert out["fer"]["ci_low"] == pytest.approx(lo, abs=0.01) and out["fer"]["ci_high"] == pytest.approx(hi, abs=0.01)
    # the ratio is taken round by round: 80/36, 72/30, 120/40
    assert out["ratio_ferlens_over_fer"]["runs"] == [2.22, 2.4, 3.0]
    assert out["ferlens"]["faces_per_run"] == [72, 72, 72] and out["fer"]["frames"] == 72


def test_drop_contempt_renormalises_and_ignores_contempt():
    p = np.array([[0.1, 0, 0, 0.2, 0, 0, 0.1, 0.6], [0.5, 0, 0, 0.25, 0, 0, 0.25, 0.0]])
    q = P.drop_contempt(p)
    assert q.shape == (2, 7) and np.allclose(q.sum(1), 1)
    assert q.argmax(1).tolist() == [3, 0] and q[0, 3] == pytest.approx(0.5)


def test_score_is_the_accuracy_of_the_argmax_with_a_ci_around_it():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 400)
    probs = rng.random((400, 7))
    s = P.score(y, probs, n_resamples=200)
    acc = float((probs.argmax(1) == y).mean())
    assert s["n"] == 400 and s["accuracy"]["value"] == pytest.approx(acc)
    assert s["accuracy"]["ci_low"] < acc < s["accuracy"]["ci_high"]


# ------------------------------------------------------------------------------------ the peer venv
def test_a_missing_peer_venv_names_the_install_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FERLENS_PEERS_VENV", str(tmp_path / "absent"))
    with pytest.raises(P.PeerVenvMissing, match=r"run python bench/peers\.py --install"):
        P.peer_python()
    with pytest.raises(SystemExit) as exc:
        P.main(["--out", str(tmp_path / "peers.json"), "--no-docs"])
    assert exc.value.code == 2
    assert "run python bench/peers.py --install" in capsys.readouterr().err
    assert not (tmp_path / "peers.json").exists()


FAKE_WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        if req["op"] == "classify":
            x = np.load(req["in"])
            np.save(req["out"], np.tile(x.mean(axis=(1, 2))[:, None], (1, 7)))
            print(json.dumps({"ok": True, "n": len(x)}), flush=True)
        elif req["op"] == "die":
            sys.exit(3)
        else:
            print(json.dumps({"ok": False, "error": "KeyError: " + req["op"]}), flush=True)
    """
)


def test_the_worker_protocol_round_trips_arrays_and_reports_errors(tmp_path):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    crops = np.arange(3 * 48 * 48, dtype=np.float32).reshape(3, 48, 48)
    with P.FerWorker(Path(sys.executable), script, stderr_path=tmp_path / "log") as w:
        probs = w.classify(crops, tmp_path)
        assert probs.shape == (3, 7) and np.allclose(probs[:, 0], crops.mean(axis=(1, 2)))
        with pytest.raises(RuntimeError, match="'bogus' failed: KeyError: bogus"):
            w.request("bogus")
        with pytest.raises(RuntimeError, match=r"exited \(status 3\)"):
            w.request("die")


# ------------------------------------------------------------------------------------ the same pixels
@pytest.mark.slow
@pytest.mark.skipif(shipped_weights("default_fer2013") is None, reason="needs shipped weights")
def test_the_corrupted_pixels_are_training_robustness_s(shared_datasets, monkeypatch):
    """ferlens scored on :func:`bench.peers.corrupted_batches` answers exactly as ``predict_corrupted`` does,
    over more than one batch, for every corruption family on main."""
    from training.augment import CORRUPTIONS
    from training.config import DataConfig
    from training.datasets import load_split
    from training.robustness import predict_corrupted

    monkeypatch.setenv("FERLENS_DATA", str(shared_datasets))
    fs = load_split(DataConfig(dataset="fer2013", root=str(shared_datasets), limit=40), "PrivateTest")
    m = P.Ferlens("default_fer2013")
    px = P.model_pixels(fs, {"default_fer2013": m})
    for name in (None, *CORRUPTIONS):  # batches of 16: three, the last one short
        mine = m.probs(P.corrupted_batches(px, name, 1.0, seed=3, batch_size=16)).argmax(1)
        assert (mine == predict_corrupted(m.model, fs, name, 1.0, seed=3, batch_size=16)).all(), name


# ------------------------------------------------------------------------------------ JSON -> docs
def test_render_reads_every_headline_figure_from_the_json():
    d = fake_result()
    text = P.render(d)
    assert "| `fer` 22.5.1 | 43.21 % [42.10, 44.43] |" in text
    assert "| ferlens `default_fer2013` | 68.82 % [67.71, 70.04] |" in text
    assert "contempt on 17 of 3573" in text
    assert "| 12.3 (mean 42.3 [39.1, 45.5]) |" in text and "3.4 (mean" in text
    assert "in 2.0 min, 3.00 GiB on disk" in text and "load average 3.2 at the start and 4.8 at the end" in text
    assert "| mean retention | 0.500 | 0.501 | 0.502 |" in text
    d["accuracy"]["fer"]["accuracy"]["value"] = 0.5555
    assert "55.55 %" in P.render(d) and "43.21 %" not in P.render(d).split("paired")[0].split("| `fer`")[1]


def test_replace_section_keeps_the_rest_and_refuses_without_markers():
    doc = f"intro\n{P.BEGIN}\nold\n{P.END}\noutro\n"
    new = replace_section(doc, "new body", P.BEGIN, P.END)
    assert new == f"intro\n{P.BEGIN}\nnew body\n{P.END}\noutro\n"
    assert replace_section(new, "new body", P.BEGIN, P.END) == new
    with pytest.raises(ValueError, match="expected one"):
        replace_section("no markers here", "x", P.BEGIN, P.END)


def test_the_model_card_peers_section_comes_from_the_json():
    from training.model_card import peers_section

    text = "\n".join(peers_section(fake_result()))
    assert "| `fer` 22.5.1 | 43.21 % [42.10, 44.43] |" in text and "| 0.500 |" in text
    assert "| ferlens `default` | 61.01 % [59.90, 62.23] |" in text and "`fer` 12.3, ferlens 41.7" in text


@pytest.mark.skipif(not COMMITTED.is_file(), reason="bench/results/peers.json not measured yet")
def test_the_committed_docs_show_the_committed_peer_figures():
    """Read back with regular expressions from docs/performance.md and docs/model-card.md: stale docs fail."""
    d = json.loads(COMMITTED.read_text())
    perf = P.PERFORMANCE_DOC.read_text()
    section = perf.split(P.BEGIN, 1)[1].split(P.END, 1)[0]
    card = (P.ROOT / "docs" / "model-card.md").read_text()
    for key in ("fer", "default", "default_fer2013"):
        a = d["accuracy"][key]["accuracy"]
        shown = f"{100 * a['value']:.2f} % [{100 * a['ci_low']:.2f}, {100 * a['ci_high']:.2f}]"
        assert shown in section and shown in card, key
    for tool in ("fer", "ferlens"):
        assert re.search(rf"\| {d['fps'][tool]['median']:.1f} \(mean", section), tool
    assert "`fer`: 37" not in perf
