"""Engine benchmark: end-to-end frame rate, classifier throughput, explanation cost, video frame rate -> JSON.

    python bench/engine.py --out bench/results/engine.json            # about 3-4 minutes on 2 cores
    python bench/engine.py --out /tmp/engine.json --quick             # under a minute

docs/performance.md explains each key. Timings are medians over repeats (shared machines are noisy), at the
library's default settings (``Detector()``: one CPU thread, onnxruntime on the CPU).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    command_line,
    fer2013_faces,
    framed_landmarks,
    loadavg,
    machine_info,
    median_ms,
    samples_dir,
    timed,
    write_json,
)
from bench.faces import letterbox  # noqa: E402
from core import explain as ex  # noqa: E402
from core.detector import Detector  # noqa: E402
from core.engine import InferenceEngine  # noqa: E402
from core.io import load_image  # noqa: E402


def classifier_rates(engine: InferenceEngine, crop: np.ndarray, budget: float) -> dict:
    out = {}
    for b in (1, 32):
        x = engine.prepare([crop] * b)
        out[f"b{b}"] = round(b / float(np.median(timed(lambda x=x: engine.predict(x), budget))), 1)
    return out


def fps(times: list[float]) -> float:
    return round(1.0 / float(np.median(times)), 1)


def video_run(det: Detector, video: Path) -> tuple[int, float]:
    """Rows and rows per second of one ``detect_video`` (decoding included)."""
    t0 = time.perf_counter()
    n = len(det.detect_video(video))
    return n, n / (time.perf_counter() - t0)


def measure(args: argparse.Namespace) -> dict:
    budget = 1.0 if args.quick else 6.0
    samples = samples_dir()
    load_start = loadavg()
    det = Detector(model=args.model, backend=args.backend, threads=args.threads if args.threads else "auto")
    engine = det.engine
    frame = letterbox(load_image(samples / "single_face.jpg"), margin=20, fill=128)  # face about 200 px wide
    faces = det.face_detector.detect(frame)
    if len(faces) != 1:
        raise RuntimeError(f"the benchmark frame should hold one face, the detector found {len(faces)}")

    # end to end on one 640x480 frame: full detection + alignment + classification, every call
    analyses = []
    e2e_times = timed(lambda: analyses.append(det._analyze(frame)), budget)
    result: dict = {
        "device": str(engine.device),
        "tta": det.tta,
        "model": engine.spec.name,
        "weights": engine.weights_status,
        "backend": engine.backend,
        "threads": torch.get_num_threads(),
        "e2e_fps": fps(e2e_times),
    }
    aligned = det.analyze_faces(frame)[0].aligned
    rates = classifier_rates(engine, aligned.image, budget)
    result["classifier_img_s_b1"], result["classifier_img_s_b32"] = rates["b1"], rates["b32"]

    # explanations (core.explain), one face: Grad-CAM; region SHAP sampled (128) and exact; pixel SHAP (500)
    x1 = engine.prepare([aligned.image])
    slow = {"min_runs": 1, "warmup": 0} if args.quick else {"min_runs": 2, "warmup": 1}
    with engine.exclusive() as model:
        result["gradcam_ms"] = median_ms(timed(lambda: ex.explain_cam(model, x1, method="gradcam"), budget))
        masks = ex.region_masks_for(aligned, engine.spec.input_size, image=frame)
        # exact (2^9 coalitions) and sampled (128 evaluations), both scored through the engine's fast path
        fwd = engine.predict_logits
        result["region_shap_ms"] = median_ms(
            timed(lambda: ex.region_shap(model, x1, masks, forward=fwd, max_evals=128), budget, **slow)
        )
        result["region_shap_exact_ms"] = median_ms(
            timed(lambda: ex.region_shap(model, x1, masks, forward=fwd), budget, **slow)
        )
        result["region_shap_players"] = len(masks)
        # the first call pays for shap's imports and numba compilation: reported apart
        t0 = time.perf_counter()
        ex.pixel_shap(model, x1, max_evals=20, forward=fwd)
        first_call_ms = round((time.perf_counter() - t0) * 1e3, 1)
        pixel = timed(lambda: ex.pixel_shap(model, x1, max_evals=500, forward=fwd), budget, slow["min_runs"], 0)
        result["pixel_shap_ms"] = median_ms(pixel)

    # video: every frame of single_face.mp4, decoding included
    video = samples / "single_face.mp4"
    det.detect_video(video, max_frames=5)  # warm-up
    n, video_fps = zip(*(video_run(det, video) for _ in range(1 if args.quick else 3)), strict=True)
    result["video_fps"] = round(float(np.median(video_fps)), 1)
    result["tta_pair"] = tta_pair(det, frame, video, budget, rounds=2 if args.quick else 3)

    details: dict = {
        "pixel_shap_first_call_ms": first_call_ms,
        "e2e_step_ms": {
            k: round(float(np.median([getattr(r, f"{k}_ms") for r in analyses])), 3)
            for k in ("detect", "align", "classify")
        },
        "e2e_runs": len(e2e_times),
        "video_rows": n[-1],
        "video_runs": [round(f, 1) for f in video_fps],
        "redetect_every": det.redetect_every,
        "engine_stats": engine.stats().to_dict(),
    }
    if not args.quick:
        other = "torch" if engine.backend == "onnx" else "onnx"
        other_engine = InferenceEngine(args.model, device="cpu", backend=other, threads=torch.get_num_threads())
        details[f"classifier_img_s_{other}"] = classifier_rates(other_engine, aligned.image, budget)
        # the same pipeline with two CPU threads (what torch picks by itself on a 2-core machine)
        if engine.device.type == "cpu":
            two = Detector(model=args.model, backend=args.backend, threads=2)
            details["threads_2"] = {
                "e2e_fps": fps(timed(lambda: two._analyze(frame), budget)),
                "video_fps": round(video_run(two, video)[1], 1),
                "classifier": classifier_rates(two.engine, aligned.image, budget),
            }
            torch.set_num_threads(result["threads"])
    if torch.cuda.is_available():
        result["gpu"] = gpu_rates(budget)
    details["loadavg_start"] = load_start
    details["loadavg_end"] = loadavg()
    result["details"] = details
    return result


def tta_pair(det: Detector, frame: np.ndarray, video: Path, budget: float, rounds: int) -> dict:
    """e2e and video FPS with mirror TTA on (``"hflip"``) and off (``None``), in alternating rounds.

    Both detectors share the engine and the face detector, so only the classification batch differs (2 crops
    per face instead of 1). Alternating rounds let a changing machine load hit both sides alike.
    """
    modes = {"hflip": "hflip", "none": None}
    dets = {k: Detector(engine=det.engine, face_detector=det.face_detector, tta=m) for k, m in modes.items()}
    e2e, classify, video_fps = defaultdict(list), defaultdict(list), defaultdict(list)
    load = [os.getloadavg()[0]]
    for _ in range(rounds):
        for k, d in dets.items():
            e2e[k] += timed(lambda d=d, k=k: classify[k].append(d._analyze(frame).classify_ms), budget / rounds)
            video_fps[k].append(video_run(d, video)[1])
        load.append(os.getloadavg()[0])
    return {
        k: {
            "e2e_fps": fps(e2e[k]),
            "video_fps": round(float(np.median(video_fps[k])), 1),
            "classify_ms": round(float(np.median(classify[k])), 3),
            "video_runs": [round(f, 1) for f in video_fps[k]],
        }
        for k in dets
    } | {"rounds": rounds, "loadavg_1min": [round(v, 2) for v in load]}


def measure_framing(rows: int = 3000) -> dict:
    """Median landmarks of FER2013 Training faces as the face pipeline sees them (core.detector's framing)."""
    from core.faces import create_detector

    dets = {name: create_detector(name) for name in ("default", "mtcnn")}
    found: dict[str, list[np.ndarray]] = {name: [] for name in dets}
    for face in fer2013_faces(rows, training_only=True):
        for name, det in dets.items():
            if (points := framed_landmarks(det, face)) is not None:
                found[name].append(points)
    out = {}
    for name, pts in found.items():
        med = np.median(np.stack(pts), axis=0)
        half_eye, half_mouth = (med[1, 0] - med[0, 0]) / 2, (med[4, 0] - med[3, 0]) / 2
        eye_y, mouth_y, c = (med[0, 1] + med[1, 1]) / 2, (med[3, 1] + med[4, 1]) / 2, 23.5
        x = c + np.array([-half_eye, half_eye, 0.0, -half_mouth, half_mouth])
        mirrored = np.stack([x, [eye_y, eye_y, med[2, 1], mouth_y, mouth_y]], axis=1)
        out[name] = {"faces": len(pts), "median": np.round(med, 2).tolist(), "mirrored": np.round(mirrored, 2).tolist()}
    return out


def gpu_rates(budget: float) -> dict:
    """HAFEM models on the GPU (bf16 autocast, channels_last) at batch 1 and 64: images per second."""
    out = {}
    for name in ("hafem_compact", "hafem_paper"):
        engine = InferenceEngine(name, weights=None, device="cuda")
        s = engine.spec.input_size
        row = {}
        for b in (1, 64):
            x = torch.randn(b, 3, s, s)

            def run(x=x, engine=engine) -> None:
                engine.predict(x)
                torch.cuda.synchronize()

            row[f"b{b}_img_s"] = round(b / float(np.median(timed(run, budget, warmup=5))), 1)
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="JSON file to write")
    ap.add_argument("--quick", action="store_true", help="short budgets: under a minute")
    ap.add_argument("--model", default="default")
    ap.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"))
    ap.add_argument("--threads", type=int, help="default: the Detector's choice (1 on the CPU)")
    ap.add_argument(
        "--measure-framing",
        action="store_true",
        help="instead: measure where the landmarks fall on FER2013 faces (core.faces.align.FER2013_FRAMING_48)",
    )
    args = ap.parse_args(argv)
    if args.measure_framing:
        print(write_json(args.out, measure_framing()))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    t0 = time.perf_counter()
    result = measure(args)
    result["machine"] = machine_info()
    result["command"] = command_line(__file__, argv)
    result["quick"] = args.quick
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(write_json(args.out, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
