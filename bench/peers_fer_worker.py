"""The `fer` side of ``bench/peers.py``: runs inside the peer venv (tensorflow) and imports neither torch nor ferlens.

One JSON request per stdin line, one reply per stdout line; arrays travel as ``.npy`` files named in the request:
``versions``; ``classify`` (``in``: ``(N, 48, 48)`` float32 crops on the 0-255 scale -> ``out``: ``(N, 7)`` float32
probabilities of fer's emotion model alone, with fer's own resize and ``__preprocess_input``); ``video`` (fer's own
``cv2.VideoCapture`` + ``FER(mtcnn=False).detect_emotions`` pipeline: frames, faces, seconds); ``quit``.
TensorFlow and fer print to stderr: stdout is pointed there so nothing they print can corrupt the protocol.
"""

import json
import os
import sys
import time
import traceback

_PROTOCOL = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # anything printed by tensorflow/keras now goes to stderr
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from fer import FER  # noqa: E402

BATCH = 256


class Worker:
    def __init__(self) -> None:
        self.fer = FER(mtcnn=False)
        self.model = self.fer._FER__emotion_classifier  # fer keeps its Keras model name-mangled
        self.size = tuple(self.model.input_shape[1:3])

    def versions(self, req: dict) -> dict:
        import importlib.metadata as md

        import tensorflow as tf

        names = ("fer", "tensorflow-cpu", "keras", "opencv-contrib-python-headless", "numpy")
        out = {}
        for n in names:
            try:
                out[n] = md.version(n)
            except md.PackageNotFoundError:
                out[n] = None
        return {
            "versions": out,
            "tensorflow_runtime": tf.__version__,
            "input_shape": list(self.model.input_shape[1:]),
            "tf_threads": {
                "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            },
        }

    def classify(self, req: dict) -> dict:
        x = np.load(req["in"]).astype(np.float32)
        if x.ndim != 3:
            raise ValueError(f"expected (N, H, W) gray crops, got shape {x.shape}")
        t0 = time.perf_counter()
        out = []
        for start in range(0, len(x), BATCH):
            faces = np.stack([cv2.resize(img, self.size) for img in x[start : start + BATCH]])
            faces = self.fer._FER__preprocess_input(faces, True)[..., None]
            out.append(np.asarray(self.model(faces, training=False), dtype=np.float32))
        probs = np.concatenate(out) if out else np.zeros((0, 7), np.float32)
        np.save(req["out"], probs)
        return {"n": len(x), "seconds": time.perf_counter() - t0}

    def video(self, req: dict) -> dict:
        cap = cv2.VideoCapture(req["path"])
        if not cap.isOpened():
            raise FileNotFoundError(f"cannot open video {req['path']!r}")
        frames = faces = 0
        max_frames = req.get("max_frames")
        t0 = time.perf_counter()
        try:
            while max_frames is None or frames < max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                faces += len(self.fer.detect_emotions(frame))
                frames += 1
        finally:
            cap.release()
        return {"frames": frames, "faces": faces, "seconds": time.perf_counter() - t0}


def main() -> int:
    worker = Worker()
    ops = {"versions": worker.versions, "classify": worker.classify, "video": worker.video}
    _PROTOCOL.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("op") == "quit":
            break
        try:
            reply = {"ok": True, **ops[req["op"]](req)}
        except Exception as exc:  # reported to the parent, which raises it
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        _PROTOCOL.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
