"""Where the live page's server spends CPU per camera frame, step by step, without a browser -> JSON.

    python bench/live_steps.py --rounds 3 --out bench/results/live_steps.json

Replays ``samples/single_face.mp4`` (640x360) through the server side of the live page: aiortc's VP8 decoder on
libvpx packets at 1.5 Mb/s, frame -> RGB, ``FrameStream.process``, drawing, RGB -> frame and aiortc's VP8 encoder,
each in the way the page used to and the way it does now. Steps are timed in process CPU seconds (all threads; a
busy machine changes it far less than wall time) and wall time; configurations alternate round by round. The
browser's side is in ``bench/webrtc.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Steps, command_line, machine_info, median_ms, samples_dir, write_json  # noqa: E402

CONFIGS = {
    "torch_2_threads": ("torch", 2),  # what the dashboard's shared engine used before this bench existed
    "torch_1_thread": ("torch", 1),
    "onnx_1_thread": ("onnx", 1),  # Detector()'s CPU default
}


def vp8_packets(frames: list[np.ndarray], bitrate: int = 1_500_000) -> list[bytes]:
    """The clip as VP8 frames from libvpx in realtime mode (what arrives at aiortc's decoder)."""
    import av

    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    enc.bit_rate = bitrate
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out = []
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        packets = enc.encode(frame)
        out.append(b"".join(bytes(p) for p in packets))
    return out


def one_pass(stream, packets: list[bytes], steps: Steps) -> None:
    """Every frame of the clip through decode -> RGB -> process -> draw -> frame -> encode, as the server does."""
    import av
    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder
    from aiortc.jitterbuffer import JitterFrame

    from dashboard.drawing import BoxLabel, draw_faces
    from dashboard.live import rgb_to_video_frame, to_rgb

    decoder, encoder, encoder_same = Vp8Decoder(), Vp8Encoder(), Vp8Encoder()
    for i, data in enumerate(packets):
        (frame,) = steps.time("vp8_decode", decoder.decode, JitterFrame(data, i * 3000))
        rgb = steps.time("to_rgb_pyav", lambda f=frame: f.to_ndarray(format="rgb24"))  # what the callback did
        steps.time("to_rgb_opencv", to_rgb, frame)  # what the callback and the worker do now
        result = steps.time("frame_stream_process", stream.process, rgb, i)
        boxes = [BoxLabel(f.face.box, k + 1, f.label, f.score) for k, f in enumerate(result.faces)]
        drawn = steps.time("draw_faces", draw_faces, rgb, boxes)
        out = steps.time("from_rgb_ndarray", lambda a=drawn: av.VideoFrame.from_ndarray(a, format="rgb24"))
        out.pts, out.time_base = frame.pts, frame.time_base
        steps.time("vp8_encode_rgb", encoder.encode, out)  # includes aiortc's rgb24 -> yuv420p reformat
        steps.time("rgb_to_i420_frame", rgb_to_video_frame, drawn, frame)  # what the callback does instead
        steps.time("vp8_encode_incoming", encoder_same.encode, frame)  # the decoded frame sent back as it is


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="passes over the clip per configuration")
    ap.add_argument("--frames", type=int, default=None, help="use only the clip's first N frames")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "live_steps.json")
    args = ap.parse_args(argv)

    from core.detector import Detector
    from core.engine import InferenceEngine
    from core.io import iter_video_frames

    clip = samples_dir() / "single_face.mp4"
    frames = [rgb for _, rgb in iter_video_frames(clip, max_frames=args.frames)]
    packets = vp8_packets(frames)
    detectors = {}
    for name in args.configs:
        backend, threads = CONFIGS[name]
        if backend not in detectors:
            engine = InferenceEngine("default", "default", device="cpu", backend=backend, threads=threads)
            detectors[backend] = Detector(engine=engine, threads=None)
    steps = {name: Steps() for name in args.configs}
    rounds = []
    for r in range(args.rounds + 1):  # round 0 (6 frames) warms up: first calls, ONNX session; it is dropped
        for name in args.configs:
            backend, threads = CONFIGS[name]
            torch.set_num_threads(threads)
            load0 = os.getloadavg()[0]
            target = steps[name] if r else Steps()
            t0 = time.perf_counter()
            one_pass(detectors[backend].stream(), packets if r else packets[:6], target)
            if r:
                rounds.append(
                    {
                        "round": r,
                        "config": name,
                        "wall_s": round(time.perf_counter() - t0, 2),
                        "loadavg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
                    }
                )

    summary = {
        name: {
            "cpu_ms_mean": {k: round(statistics.fmean(v) * 1e3, 3) for k, v in s.cpu.items()},
            "cpu_ms_median": {k: median_ms(v) for k, v in s.cpu.items()},
            "wall_ms_median": {k: median_ms(v) for k, v in s.wall.items()},
        }
        for name, s in steps.items()
    }
    result = {
        "what": "server side of the live page per camera frame, single_face.mp4 640x360, no browser",
        "machine": machine_info(),
        "configs": {k: {"backend": CONFIGS[k][0], "torch_threads": CONFIGS[k][1]} for k in args.configs},
        "frames_per_round": len(frames),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command_line(__file__, argv),
        "niceness": os.nice(0),
        "note": "means include the detection frames (every 5th); cpu = process time, all threads",
        "summary": summary,
        "rounds": rounds,
    }
    write_json(args.out, result)
    for name, s in summary.items():
        print(name, " ".join(f"{k}={v:.2f}" for k, v in s["cpu_ms_mean"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
