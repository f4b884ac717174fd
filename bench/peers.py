"""Peers side by side: the `fer` PyPI package and ferlens, measured in one run, interleaved -> JSON and docs.

    python bench/peers.py --install                              # once: the peer venv (tensorflow), 1.6 GB
    python bench/peers.py --out bench/results/peers.json         # measure (about 10-20 minutes on 2 busy cores)
    python bench/peers.py --render                               # rewrite docs from the JSON (no measuring)

`fer` runs in its own venv through ``bench/peers_fer_worker.py``, so tensorflow never enters ferlens' environment.
Both tools get the same FER2013 PrivateTest crops (each resizes and normalises them its own way), the same video
and the same corrupted pixels; they alternate (A B, then B A, ...) so a changing machine load hits both alike.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    command_line,
    loadavg,
    machine_info,
    replace_section,
    samples_dir,
    write_json,
)

log = logging.getLogger("bench.peers")

REQUIREMENTS = ROOT / "bench" / "peers-requirements.txt"
WORKER = ROOT / "bench" / "peers_fer_worker.py"
RESULTS = ROOT / "bench" / "results" / "peers.json"
PERFORMANCE_DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"
INSTALL_RECORD = "ferlens-peers-install.json"
FERLENS_MODELS = ("default", "default_fer2013")


class PeerVenvMissing(RuntimeError):
    """The peer environment has not been installed."""


def peer_venv() -> Path:
    """``$FERLENS_PEERS_VENV``, else ``<cache>/peers/fer-venv`` (``$FERLENS_CACHE`` or ``<repo>/cache``, gitignored)."""
    if os.environ.get("FERLENS_PEERS_VENV"):
        return Path(os.environ["FERLENS_PEERS_VENV"])
    from training.datasets import cache_root

    return cache_root() / "peers" / "fer-venv"


def peer_python(venv: Path | None = None) -> Path:
    """The peer venv's interpreter; raises :class:`PeerVenvMissing` naming the install command."""
    venv = venv or peer_venv()
    py = venv / "bin" / "python"
    if not py.is_file():
        raise PeerVenvMissing(f"no peer environment at {venv}: run python bench/peers.py --install")
    return py


def install(venv: Path) -> dict:
    """Create ``venv`` with ``python -m venv`` and pip-install the pinned list with ``--no-deps``; record it.

    ``--no-deps``: the list is complete and exact; it leaves out fer's declared ``facenet-pytorch`` (only its
    MTCNN option imports it, and it would pull in a second torch) and ``ffmpeg`` (an unrelated placeholder
    package; nothing imports it).
    """
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "-r", str(REQUIREMENTS)], check=True)
    subprocess.run([py, "-c", "import fer, tensorflow"], check=True)
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - t0, 1),
        "bytes": sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink()),
        "requirements_sha256": hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest(),
        "command": "python bench/peers.py --install",
        "loadavg": loadavg(),
    }
    write_json(venv / INSTALL_RECORD, record)
    return record


class FerWorker:
    """A running ``bench/peers_fer_worker.py`` (one JSON request and reply per line), as a context manager."""

    def __init__(self, python: Path, script: Path = WORKER, stderr_path: Path | None = None):
        self.python = python
        self.script = script
        self.stderr_path = stderr_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> FerWorker:
        err = open(self.stderr_path, "w") if self.stderr_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        self.proc = subprocess.Popen(
            [str(self.python), str(self.script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            text=True, env=env,
        )  # fmt: skip
        self._read()  # {"ready": true} once fer and its model are loaded
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            where = f"; its log: {self.stderr_path}" if self.stderr_path else ""
            raise RuntimeError(f"the fer worker exited (status {code}) without replying{where}")
        return json.loads(line)

    def request(self, op: str, **kw) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if not reply.pop("ok", False):
            raise RuntimeError(f"fer worker {op!r} failed: {reply.get('error')}\n{reply.get('traceback', '')}")
        return reply

    def classify(self, crops: np.ndarray, tmp: Path) -> np.ndarray:
        """``(N, 7)`` probabilities of `fer`'s emotion model for ``(N, 48, 48)`` crops on the 0-255 scale."""
        src, dst = tmp / "fer_in.npy", tmp / "fer_out.npy"
        np.save(src, np.asarray(crops, np.float32))
        self.request("classify", **{"in": str(src), "out": str(dst)})
        return np.load(dst).astype(np.float64)


def schedule(names: Sequence[str], rounds: int) -> list[tuple[int, str]]:
    """``(round, name)`` in run order, reversed on odd rounds (A B, B A, ...): each tool goes first equally often."""
    return [(r, n) for r in range(rounds) for n in (names if r % 2 == 0 else names[::-1])]


def interleave(runs: dict[str, Callable[[], dict]], rounds: int) -> dict:
    """Each callable once per round in :func:`schedule` order; ``{name: [result, ...], "loadavg_1min": [...]}``."""
    out: dict[str, list] = {n: [] for n in runs}
    load = []
    for r, name in schedule(list(runs), rounds):
        before = round(os.getloadavg()[0], 2)
        out[name].append({**runs[name](), "round": r, "loadavg_1min": before})
        load.append(before)
    return {**out, "loadavg_1min": load + [round(os.getloadavg()[0], 2)]}


def rate_summary(values: Sequence[float]) -> dict:
    """Median, mean and the 95 % t-interval of the mean (``training.stats.t_interval``) of per-run rates."""
    from training.stats import t_interval

    mean, sd, lo, hi = t_interval(values)
    r2 = lambda v: None if v != v else round(float(v), 2)  # noqa: E731  (nan -> None for JSON)
    return {
        "median": r2(float(np.median(values))),
        "mean": r2(mean),
        "ci_low": r2(lo),
        "ci_high": r2(hi),
        "runs": [r2(v) for v in values],
    }


def fps_summary(results: dict) -> dict:
    """Per tool: FPS over the interleaved runs, plus the per-round ratio ferlens / fer."""
    tools = [k for k in results if k != "loadavg_1min"]
    out: dict = {"loadavg_1min": results["loadavg_1min"]}
    for t in tools:
        fps = [r["frames"] / r["seconds"] for r in results[t]]
        out[t] = {
            **rate_summary(fps),
            "frames": results[t][0]["frames"],
            "faces_per_run": [r["faces"] for r in results[t]],
        }
    if {"fer", "ferlens"} <= set(tools):
        pairs = zip(results["fer"], results["ferlens"], strict=True)
        ratio = [(b["frames"] / b["seconds"]) / (a["frames"] / a["seconds"]) for a, b in pairs]
        out["ratio_ferlens_over_fer"] = rate_summary(ratio)
    return out


def score(y: np.ndarray, probs: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Accuracy and macro-F1 with ``core.metrics.bootstrap_ci``'s percentile CIs (the same seed for every tool,
    so every tool is scored on the same resamples)."""
    from core.metrics import bootstrap_ci

    ci = bootstrap_ci(y, probs, n_resamples=n_resamples, seed=seed)
    return {"n": int(len(y)), "accuracy": ci["accuracy"], "macro_f1": ci["macro_f1"]}


def drop_contempt(probs8: np.ndarray) -> np.ndarray:
    """8-class probabilities without the contempt column, renormalised (a 7-class reading of the same model)."""
    p = probs8[:, :7]
    return p / p.sum(axis=1, keepdims=True)


def corrupted_batches(
    images: np.ndarray, corruption: str | None, severity: float, seed: int = 0, batch_size: int = 256
) -> Iterator:
    """``(N, 1, S, S)`` uint8 faces as float batches in [0, 1], corrupted exactly as
    ``training.robustness.predict_corrupted`` does: one generator seeded once, the same batches, the same calls."""
    import torch

    from training.augment import CORRUPTIONS

    x_all = torch.as_tensor(images)
    g = torch.Generator().manual_seed(seed)
    for start in range(0, len(x_all), batch_size):
        x = x_all[start : start + batch_size].float() / 255.0
        if corruption is not None:
            x = CORRUPTIONS[corruption](x, torch.full((len(x),), float(severity)), g)
        yield x


class Ferlens:
    """A shipped ferlens model scored as ``training.evaluate`` scores it (its transform, its temperature)."""

    def __init__(self, name: str) -> None:
        from core.engine import sidecar_temperature
        from core.models.weights import read_meta
        from training.evaluate import build_model

        self.model, path = build_model(name, None, None, {})
        self.model.eval()
        self.name, self.weights = name, path
        self.temperature = sidecar_temperature(read_meta(path)) or 1.0

    def probs(self, batches: Iterable, tta: str | None = None) -> np.ndarray:
        import torch

        from core.engine import probabilities

        with torch.no_grad():
            out = [probabilities(self.model, self.model.spec.normalize(x), self.temperature, tta) for x in batches]
        return torch.cat(out).double().numpy()


def model_pixels(fs, models: dict[str, Ferlens]) -> np.ndarray:
    """The faces as every model sees them (``training.loader.prepare_tensor``), checked to be the raw crops."""
    from training.loader import prepare_tensor

    px = prepare_tensor(fs, next(iter(models.values())).model.spec).numpy()
    for m in models.values():
        if not np.array_equal(prepare_tensor(fs, m.model.spec).numpy(), px):
            raise RuntimeError(f"{m.name} does not take the 48x48 crops as they are; the comparison assumes it")
    if px.shape[1:] != (1, 48, 48) or not np.array_equal(px[:, 0], fs.images):
        raise RuntimeError(f"ferlens' input {px.shape[1:]} is not the raw 48x48 crop")
    return px


def measure_accuracy(
    fer: FerWorker, models: dict[str, Ferlens], tmp: Path, n_resamples: int, limit: int | None = None
) -> dict:
    from training.evaluate import load_faceset
    from training.stats import mcnemar, paired_bootstrap_accuracy_diff

    fs = load_faceset("fer2013", "PrivateTest", limit, 7, None, [])  # a stratified slice when limited
    y = np.asarray(fs.labels)
    px = model_pixels(fs, models)
    runs = {"fer": lambda: {"probs": fer.classify(px[:, 0].astype(np.float32), tmp)}}
    for name, m in models.items():
        runs[name] = lambda m=m: {"probs": m.probs(corrupted_batches(px, None, 0.0))}
        runs[f"{name}_tta"] = lambda m=m: {"probs": m.probs(corrupted_batches(px, None, 0.0), tta="hflip")}
    done = interleave(runs, 1)
    probs = {k: v[0]["probs"] for k, v in done.items() if k != "loadavg_1min"}
    out: dict = {"n": int(len(y)), "ids_sha256": hashlib.sha256(np.asarray(fs.ids).tobytes()).hexdigest()}
    out["fer"] = score(y, probs["fer"], n_resamples)
    for name in models:
        out[name] = score(y, probs[name], n_resamples)
        out[f"{name}_tta"] = score(y, probs[f"{name}_tta"], n_resamples)
        if probs[name].shape[1] == 8:
            out[name]["contempt_answers"] = int((probs[name].argmax(1) == 7).sum())
            out[f"{name}_contempt_dropped"] = score(y, drop_contempt(probs[name]), n_resamples)
    right = {k: p.argmax(1) == y for k, p in probs.items()}
    for name in models:  # McNemar and the paired bootstrap of accuracy(ferlens) - accuracy(fer)
        out[f"{name}_vs_fer"] = {
            "mcnemar": mcnemar(right[name], right["fer"]).to_dict(),
            "accuracy_diff": paired_bootstrap_accuracy_diff(right[name], right["fer"], seed=0).to_dict(),
        }
    out["loadavg_1min"] = done["loadavg_1min"]
    return out


def measure_fps(fer: FerWorker, video: Path, rounds: int) -> dict:
    import torch

    from core.detector import Detector

    det = Detector()
    fer.request("video", path=str(video), max_frames=5)  # warm-up, both sides
    det.detect_video(video, max_frames=5)

    def ferlens_run() -> dict:
        frames = [0]
        t0 = time.perf_counter()
        df = det.detect_video(video, progress=lambda done, _: frames.__setitem__(0, done))
        return {"frames": frames[0], "faces": len(df), "seconds": time.perf_counter() - t0}

    def fer_run() -> dict:
        r = fer.request("video", path=str(video))
        return {k: r[k] for k in ("frames", "faces", "seconds")}

    res = interleave({"fer": fer_run, "ferlens": ferlens_run}, rounds)
    out = fps_summary(res)
    out["ferlens_settings"] = {
        "model": det.engine.spec.name,
        "backend": det.engine.backend,
        "tta": det.tta,
        "torch_threads": torch.get_num_threads(),
        "redetect_every": det.redetect_every,
    }
    return out


def measure_robustness(fer: FerWorker, models: dict[str, Ferlens], tmp: Path, limit: int, n_resamples: int) -> dict:
    import torch

    from training.augment import CORRUPTIONS
    from training.evaluate import load_faceset
    from training.robustness import SEVERITIES

    fs = load_faceset("fer2013", "PrivateTest", limit, 7, None, [])
    y = np.asarray(fs.labels)
    px = model_pixels(fs, models)
    conditions: list[tuple[str | None, float]] = [(None, 0.0)] + [(c, s) for c in CORRUPTIONS for s in SEVERITIES]
    rows = []
    tools = ["fer", *models]
    for k, (corruption, severity) in enumerate(conditions):
        x = np.concatenate([b.numpy() for b in corrupted_batches(px, corruption, severity)])
        row: dict = {"corruption": corruption or "clean", "severity": severity}
        for name in tools if k % 2 == 0 else tools[::-1]:  # alternating who goes first
            probs = fer.classify(x[:, 0] * 255.0, tmp) if name == "fer" else models[name].probs([torch.from_numpy(x)])
            row[name] = score(y, probs, n_resamples)["accuracy"]
        rows.append(row)
        log.info("robustness %s @ %.2f: %s", row["corruption"], severity, {t: round(row[t]["value"], 4) for t in tools})
    clean = rows[0]
    summary = {}
    for t in tools:
        ret = [r[t]["value"] / clean[t]["value"] for r in rows[1:]]
        for r, v in zip(rows[1:], ret, strict=True):
            r[t] = {**r[t], "retention": v}
        summary[t] = {"clean": clean[t], "mean_retention": float(np.mean(ret)),
                      "mean_accuracy": float(np.mean([r[t]["value"] for r in rows[1:]]))}  # fmt: skip
    return {
        "n": int(len(y)),
        "limit": limit,
        "slice": "training.datasets.limit_index(labels, limit, 'stratified') of FER2013 PrivateTest",
        "families": list(CORRUPTIONS),
        "severities": list(SEVERITIES),
        "conditions": rows,
        "summary": summary,
    }


def measure(args: argparse.Namespace) -> dict:
    import torch

    venv = peer_venv()
    py = peer_python(venv)
    torch.set_num_threads(1)  # the Detector's CPU default; the same for scoring, so ferlens uses one core
    load_start = loadavg()
    t_start = time.perf_counter()
    record = venv / INSTALL_RECORD
    install_info = json.loads(record.read_text()) if record.is_file() else None
    models = {n: Ferlens(n) for n in FERLENS_MODELS}
    video = samples_dir() / "single_face.mp4"
    with tempfile.TemporaryDirectory(prefix="ferlens-peers-") as tmp_s:
        tmp = Path(tmp_s)
        with FerWorker(py, stderr_path=tmp / "fer-worker.log") as fer:
            versions = fer.request("versions")
            fps = measure_fps(fer, video, args.rounds)
            log.info("fps: %s", {k: v.get("median") for k, v in fps.items() if isinstance(v, dict)})
            accuracy = measure_accuracy(fer, models, tmp, args.bootstrap, args.accuracy_limit)
            log.info(
                "accuracy: %s",
                {k: v["accuracy"]["value"] for k, v in accuracy.items() if isinstance(v, dict) and "accuracy" in v},
            )
            robust = measure_robustness(fer, models, tmp, args.robustness_limit, args.bootstrap)
    import onnxruntime

    return {
        "command": args.command,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "peer": {
            "name": "fer",
            "source": "https://pypi.org/project/fer/ (Justin Shenk); emotion model: mini-Xception from "
            "oarriaga/face_classification",
            **versions,
            "install": install_info,
            "requirements": REQUIREMENTS.relative_to(ROOT).as_posix(),
        },
        "ferlens": {
            "models": {n: {"weights": Path(m.weights).name, "temperature": m.temperature} for n, m in models.items()},
            "torch_threads": torch.get_num_threads(),
            "onnxruntime": onnxruntime.__version__,
        },
        "accuracy": accuracy,
        "fps": {"video": video.name, **fps},
        "robustness": robust,
        "bootstrap": {"n_resamples": args.bootstrap, "seed": 0, "alpha": 0.05, "by": "core.metrics.bootstrap_ci"},
    }


def _pct(m: dict) -> str:
    return f"{100 * m['value']:.2f} % [{100 * m['ci_low']:.2f}, {100 * m['ci_high']:.2f}]"


def _fps(m: dict) -> str:
    if m.get("ci_low") is None:  # a single run has no interval
        return f"{m['median']:.1f}"
    return f"{m['median']:.1f} (mean {m['mean']:.1f} [{m['ci_low']:.1f}, {m['ci_high']:.1f}])"


def render(d: dict) -> str:
    """The markdown of the peers section of docs/performance.md, every figure read from ``d`` (peers.json)."""
    a, f, r, p = d["accuracy"], d["fps"], d["robustness"], d["peer"]
    v = p["versions"]
    installed = ""
    if inst := p.get("install"):
        gib = inst["bytes"] / 2**30
        installed = f", installed by `{inst['command']}` in {inst['wall_s'] / 60:.1f} min, {gib:.2f} GiB on disk"
    rows = [
        ("`fer` " + v["fer"], "fer"),
        ("ferlens `default_fer2013`", "default_fer2013"),
        ("ferlens `default_fer2013`, hflip TTA", "default_fer2013_tta"),
        ("ferlens `default` (8 classes, contempt counts as wrong)", "default"),
        ("ferlens `default`, contempt column dropped", "default_contempt_dropped"),
        ("ferlens `default`, hflip TTA", "default_tta"),
    ]
    lines = [
        f"Command: `{d['command']}` ({d['date'][:10]}, wall {d['wall_s'] / 60:.0f} min, load average "
        f"{d['loadavg_start'][0]:.1f} at the start and {d['loadavg_end'][0]:.1f} at the end; {d['machine']['cpu']}, "
        f"{d['machine']['cores']} cores). `fer` {v['fer']} with tensorflow-cpu {v['tensorflow-cpu']} in its own "
        f"venv (`{p['requirements']}`){installed}.",
        "",
        f"**FER2013 PrivateTest** (n = {a['n']}, FER2013 labels, 95 % bootstrap CIs from `core.metrics.bootstrap_ci`, "
        f"{d['bootstrap']['n_resamples']} resamples, the same seed for every row):",
        "",
        "| tool | accuracy | macro-F1 |",
        "|---|---:|---:|",
    ]
    for title, key in rows:
        lines.append(f"| {title} | {_pct(a[key]['accuracy'])} | {_pct(a[key]['macro_f1'])} |")
    lines.append("")
    for name in FERLENS_MODELS:
        c = a[f"{name}_vs_fer"]
        diff = c["accuracy_diff"]
        lines.append(
            f"- `{name}` minus `fer`: {100 * diff['diff']:+.2f} points [{100 * diff['ci_low']:+.2f}, "
            f"{100 * diff['ci_high']:+.2f}] (paired bootstrap), McNemar p = {c['mcnemar']['p_value']:.2g}."
        )
    if "contempt_answers" in a["default"]:
        lines.append(f"- `default` answered contempt on {a['default']['contempt_answers']} of {a['n']} images.")
    fl, fr = f["ferlens"], f["fer"]
    s = f["ferlens_settings"]
    lines += [
        "",
        f"**End-to-end FPS** on `{f['video']}` ({fl['frames']} frames; decoding + detection + classification, every "
        f"frame; {len(fl['runs'])} runs each, interleaved; median, then mean with its 95 % t-interval):",
        "",
        "| tool | pipeline | FPS | faces found per run |",
        "|---|---|---:|---|",
        f"| `fer` | `cv2.VideoCapture` + `FER(mtcnn=False).detect_emotions` (Haar cascade + mini-Xception), "
        f"tensorflow's default threads | {_fps(fr)} | {', '.join(map(str, fr['faces_per_run']))} |",
        f"| ferlens | `Detector().detect_video` (`{s['model']}`, {s['backend']}, {s['torch_threads']} thread(s), TTA "
        f"{s['tta']}, re-detect every {s['redetect_every']} frames) | {_fps(fl)} | "
        f"{', '.join(map(str, fl['faces_per_run']))} |",
        "",
        f"ferlens / `fer` per round: {_fps(f['ratio_ferlens_over_fer'])} times; 1-minute load average before each run: "
        f"{', '.join(f'{x:.1f}' for x in f['loadavg_1min'])}.",
        "",
        f"**Robustness** on a stratified slice of {r['n']} PrivateTest images (`training.augment.CORRUPTIONS`, "
        f"severities {', '.join(map(str, r['severities']))}, corrupted exactly as `training.robustness` does, the "
        "same pixels for every tool; accuracy with its 95 % bootstrap CI, retention = corrupted / clean):",
        "",
        "| condition | " + " | ".join(f"`{t}`" for t in r["summary"]) + " |",
        "|---|" + "---:|" * len(r["summary"]),
    ]
    for row in r["conditions"]:
        cond = "clean" if row["corruption"] == "clean" else f"{row['corruption']} {row['severity']}"
        cells = [
            _pct(row[t]) + (f" ({row[t]['retention']:.2f})" if "retention" in row[t] else "") for t in r["summary"]
        ]
        lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    lines.append(
        "| mean retention | " + " | ".join(f"{r['summary'][t]['mean_retention']:.3f}" for t in r["summary"]) + " |"
    )
    return "\n".join(lines)


def write_docs(d: dict) -> None:
    """Rewrite the peers section of docs/performance.md from ``d``, and the model card (it reads peers.json)."""
    from training.model_card import CARD_PATH, render_shipped_card

    PERFORMANCE_DOC.write_text(replace_section(PERFORMANCE_DOC.read_text(), render(d), BEGIN, END))
    CARD_PATH.write_text(render_shipped_card())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--install", action="store_true", help="create the peer venv and exit")
    ap.add_argument("--render", action="store_true", help="only rewrite the docs from --out")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--rounds", type=int, default=4, help="interleaved video runs per tool")
    ap.add_argument("--robustness-limit", type=int, default=500, help="stratified PrivateTest slice")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--accuracy-limit", type=int, help="a stratified slice instead of all of PrivateTest (smoke runs)")
    ap.add_argument("--no-docs", action="store_true", help="measure without rewriting the docs")
    args = ap.parse_args(argv)
    args.command = command_line(__file__, argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.install:
        print(json.dumps(install(peer_venv()), indent=2))
        return 0
    if not args.render:
        try:
            result = measure(args)
        except PeerVenvMissing as exc:
            ap.exit(2, f"error: {exc}\n")
        write_json(args.out, result)
    if not args.no_docs:
        write_docs(json.loads(args.out.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
