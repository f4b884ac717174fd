"""Face-pipeline speed and recall per detector backend -> JSON (the numbers in docs/faces.md).

    python bench/faces.py --out bench/results/faces.json [--quick] [--threads N]

Speed per 640x480 frame (wall and CPU time: on a shared machine wall time also measures the neighbours), the
tracker amortised over a video, recall on the sample photos and videos, and the face mesh's cost and region
shift (``--mesh-only`` merges just that into an existing ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Steps, fer2013_faces, framed_landmarks, machine_info, samples_dir, write_json  # noqa: E402
from core.faces import DetectorUnavailableError, FaceTracker, align_face, create_detector  # noqa: E402
from core.io import iter_video_frames, load_image  # noqa: E402

EXPECTED = {
    "multi_face.jpg": 5,
    "single_face.jpg": 1,
    "0-f1-su-ph.jpg": 1,
    "0-f15-hao-ph.jpg": 1,
    "15-f13-anc-ph.jpg": 1,
    "45-m7-di-ph.jpg": 1,
    "free-mountain-vector-01.jpg": 0,
}
VIDEOS = {"single_face.mp4": 1, "no_face.mp4": 0}


def letterbox(image: np.ndarray, width: int = 640, height: int = 480, margin: int = 0, fill: int = 0) -> np.ndarray:
    """``image`` scaled to fit ``width`` x ``height`` less ``margin`` on every side, centred on a ``fill`` canvas."""
    h, w = image.shape[:2]
    s = min((width - 2 * margin) / w, (height - 2 * margin) / h)
    small = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    out = np.full((height, width, 3), fill, np.uint8)
    y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def _stats(values: list[float]) -> dict:
    arr = np.asarray(values) * 1000.0
    return {"median_ms": round(float(np.median(arr)), 2), "p90_ms": round(float(np.percentile(arr, 90)), 2)}


def _wall_cpu(steps: Steps, name: str) -> dict:
    return {"wall": _stats(steps.wall[name]), "cpu": _stats(steps.cpu[name])}


def time_pipeline(det, frames: list[np.ndarray], repeats: int, size: int) -> dict:
    """Detection + alignment of every face to ``size``, per frame."""

    def pipeline(f: np.ndarray, steps: Steps) -> None:
        for face in steps.time("detect", det.detect, f):
            align_face(f, face, size)

    for f in frames[:2]:  # warm-up: weights, oneDNN primitives
        pipeline(f, Steps())
    steps = Steps()
    for _ in range(repeats):
        for f in frames:
            steps.time("frame", pipeline, f, steps)
    return {
        **_wall_cpu(steps, "frame"),
        "detect_only_wall": _stats(steps.wall["detect"]),
        "frames_timed": len(steps.wall["frame"]),
    }


def recall(det, images: dict[str, np.ndarray], videos: dict[str, list[np.ndarray]]) -> dict:
    out: dict = {"photos": {}, "photos_640x480": {}, "videos": {}}
    for name, img in images.items():
        out["photos"][name] = {"found": len(det.detect(img)), "expected": EXPECTED[name]}
        out["photos_640x480"][name] = {"found": len(det.detect(letterbox(img))), "expected": EXPECTED[name]}
    for name, frames in videos.items():
        ok = sum(len(det.detect(f)) == VIDEOS[name] for f in frames)
        out["videos"][name] = {"frames_right": ok, "frames": len(frames), "expected_per_frame": VIDEOS[name]}
    photos = [*out["photos"].values(), *out["photos_640x480"].values()]
    out["all_correct"] = all(v["found"] == v["expected"] for v in photos) and all(
        v["frames_right"] == v["frames"] for v in out["videos"].values()
    )
    return out


def time_tracker(frames: list[np.ndarray], size: int) -> dict:
    tracker = FaceTracker(redetect_every=10)
    for f in frames[:2]:
        tracker.update(f)
    tracker.reset()
    steps = Steps()
    for f in frames:
        steps.time("frame", lambda f=f: [align_face(f, face, size) for face in tracker.update(f)])
    return {
        **_wall_cpu(steps, "frame"),
        "mean_wall_ms": round(1000 * float(np.mean(steps.wall["frame"])), 2),
        "mean_cpu_ms": round(1000 * float(np.mean(steps.cpu["frame"])), 2),
        "frames": len(frames),
        "full_detections": tracker.full_detections,
    }


def time_mesh(det, frames: list[np.ndarray], repeats: int) -> dict:
    """``fit_mesh`` per face (the detector's faces in each frame), wall and process CPU."""
    from core.faces import fit_mesh

    faces = [(f, face) for f in frames for face in det.detect(f)]
    for f, face in faces[:2]:  # warm-up: the interpreter
        fit_mesh(f, face.landmarks)
    steps = Steps()
    fits = [steps.time("fit", fit_mesh, f, face.landmarks) for _ in range(repeats) for f, face in faces]
    return {**_wall_cpu(steps, "fit"), "faces": len(faces), "fits_timed": len(fits), "ok": sum(f.ok for f in fits)}


def region_shift(det, images: dict[str, np.ndarray]) -> dict:
    """Per sample face: each region's centroid, mesh vs 5-point (both clipped to the face box), in photo pixels,
    as a fraction of the face box (``hypot(dx / box_w, dy / box_h)``)."""
    from core.faces import REGION_NAMES, fit_mesh, regions_for, regions_to_image

    per_region: dict[str, list[float]] = {n: [] for n in REGION_NAMES}
    faces = []
    for name, img in images.items():
        for k, face in enumerate(det.detect(img)):
            a = align_face(img, face, 224)
            fit = fit_mesh(img, face.landmarks)
            mesh = regions_to_image(regions_for(a, mesh=fit), a)
            five = regions_to_image(regions_for(a, mesh=False), a)
            _, _, w, h = face.box
            shifts = {}
            for n in REGION_NAMES:
                d = mesh[n].centroid - five[n].centroid
                shifts[n] = float(np.hypot(d[0] / w, d[1] / h))
                per_region[n].append(shifts[n])
            faces.append(
                {
                    "photo": name,
                    "face": k,
                    "source": mesh.source,
                    "presence": round(fit.presence, 4),
                    "yaw_deg": round(fit.yaw_deg, 1),
                    "mean_shift": round(float(np.mean(list(shifts.values()))), 4),
                }
            )
    every = [v for vals in per_region.values() for v in vals]
    return {
        "unit": "centroid distance / face box (x by box width, y by box height)",
        "mean_shift": round(float(np.mean(every)), 4),
        "max_shift": round(float(np.max(every)), 4),
        "per_region_mean": {n: round(float(np.mean(v)), 4) for n, v in per_region.items()},
        "faces": faces,
    }


def fer_points(det, rows: int = 300) -> dict:
    """On FER2013 rows: the mesh fitted on the 48-px crop (as ``regions_for_crop`` does) and the framing's typical
    points, each against the detector's five points on the crop upscaled 4x with context (the oracle), in eye
    distances; the mesh's errors are over the rows whose fit was accepted."""
    from core.faces import fit_mesh
    from core.faces.align import framing_points
    from core.faces.au_regions import CROP_MESH_CONFIG

    typical = framing_points(48, "fer2013")
    err_mesh, err_typical = [], []
    for face in fer2013_faces(rows):
        oracle = framed_landmarks(det, face)
        if oracle is None:
            continue
        iod = float(np.hypot(*(oracle[1] - oracle[0])))
        err_typical.append(np.hypot(*(typical - oracle).T) / iod)
        fit = fit_mesh(np.repeat(face[..., None], 3, axis=2), typical, CROP_MESH_CONFIG)
        if fit.ok:
            err_mesh.append(np.hypot(*(fit.five_points() - oracle).T) / iod)

    def summary(errs: list[np.ndarray]) -> dict:
        e = np.asarray(errs)
        return {
            "mean_per_point": [round(float(v), 3) for v in e.mean(axis=0)],
            "median_of_worst_point": round(float(np.median(e.max(axis=1))), 3),
        }

    return {
        "rows": rows,
        "oracle_faces": len(err_typical),
        "mesh_ok": len(err_mesh),
        "points": "left eye, right eye, nose, mouth left, mouth right (eye distances)",
        "mesh_on_48px_crop": summary(err_mesh),
        "framing_typical_points": summary(err_typical),
    }


def mesh_section(frames640: list[np.ndarray], images: dict[str, np.ndarray], repeats: int) -> dict:
    det = create_detector("default")
    out: dict = {"machine": machine_info(), "load_avg_before": os.getloadavg(), "budget_ms_per_face": 5.0}
    out["per_face_640x480"] = time_mesh(det, frames640, repeats)
    out["region_shift_vs_5_point"] = region_shift(det, images)
    out["fer2013"] = fer_points(det)
    out["load_avg_after"] = os.getloadavg()
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--quick", action="store_true", help="3 repeats, every 4th video frame, skip full-res MTCNN")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--backends", nargs="*", default=None)
    ap.add_argument("--mesh-only", action="store_true", help="only the face-mesh section, merged into --out")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    repeats = 3 if args.quick else 10
    every = 4 if args.quick else 1
    sd = samples_dir()
    images = {n: load_image(sd / n) for n in EXPECTED}
    frames640 = [letterbox(img) for img in images.values()]
    if args.mesh_only:
        result = json.loads(args.out.read_text()) if args.out.is_file() else {}
        result["mesh"] = mesh_section(frames640, images, repeats)
        print("mesh", json.dumps(result["mesh"]["per_face_640x480"]), flush=True)
        write_json(args.out, result)
        return result
    videos = {n: [rgb for _, rgb in iter_video_frames(sd / n, every=every)] for n in VIDEOS}
    full = ["default", "mtcnn_fast", "mtcnn", "retinaface"]
    backends = args.backends or (["default", "mtcnn_fast", "retinaface"] if args.quick else full)
    result: dict = {
        "machine": machine_info(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_before": os.getloadavg(),
        "repeats": repeats,
        "frame": "640x480 letterbox of each sample photo",
        "backends": {},
    }
    for name in backends:
        try:
            det = create_detector(name)
        except DetectorUnavailableError as exc:
            result["backends"][name] = {"available": False, "reason": str(exc)}
            continue
        result["backends"][name] = {
            "available": True,
            "detector": repr(det),
            "align48": time_pipeline(det, frames640, repeats, 48),
            "align224": time_pipeline(det, frames640, max(1, repeats // 3), 224),
            "recall": recall(det, images, videos),
        }
        print(name, json.dumps({"align48": result["backends"][name]["align48"]}), flush=True)
    tracked = [letterbox(f) for f in videos["single_face.mp4"]]
    result["tracker_default_single_face_mp4_640x480"] = time_tracker(tracked, 48)
    result["mesh"] = mesh_section(frames640, images, repeats)
    result["load_avg_after"] = os.getloadavg()
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
