"""Command line: ``python -m core predict PATH... --out FILE.csv`` (images, videos or folders; see docs/api.md).

One CSV row per face per frame. A file without a face gives a ``note:`` line, an unreadable one an ``error:``
line while the others still run; the exit status is 1 if any file failed (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.io import IMAGE_SUFFIXES as IMAGE_EXTS

log = logging.getLogger("core.cli")

VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
EXPLAIN_METHODS = ("gradcam", "shap")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m core",
        description="ferlens: facial-expression recognition from the command line.",
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "predict",
        help="classify the faces in images, videos and directories into a CSV",
        description="Detect, align and classify every face; one CSV row per face per frame.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image, video, or directory (searched recursively)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="CSV file to write")
    p.add_argument("--model", default="default", help="registered model name (default: %(default)s)")
    p.add_argument("--weights", default="default", help="a .safetensors file; 'default' = the shipped weights if any")
    p.add_argument(
        "--assume-cropped",
        action="store_true",
        help="each image is one already-cropped face (no detection), e.g. FER2013-style crops",
    )
    p.add_argument("--face-detector", default="default", help="face detector name (default: %(default)s)")
    p.add_argument(
        "--framing",
        default="fer2013",
        choices=("fer2013", "template"),
        help="how detected faces are cropped for the model (default: %(default)s, like the training faces)",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="average each face with its mirror image (hflip test-time augmentation; default: on)",
    )
    p.add_argument("--skip-frames", type=int, default=0, metavar="N", help="videos: skip N frames after each one")
    p.add_argument(
        "--explain",
        choices=EXPLAIN_METHODS,
        help="write an explanation overlay PNG per face next to the CSV (videos: per track, first frame)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")
    p.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "torch", "onnx"),
        help="auto = onnxruntime on CPU, torch on GPU (default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch and onnxruntime (default: 1 on the CPU, see docs/performance.md)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    return ap


def iter_inputs(paths: Sequence[str]) -> Iterator[tuple[Path, str]]:
    """``(path, kind)`` for every input: kind is ``image``, ``video`` or ``missing``.

    A directory contributes its image and video files (by extension, sorted, recursively); other files inside
    it are skipped. A file named on the command line is always tried (as a video if its extension says so).
    """
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                ext = f.suffix.lower()
                if ext in IMAGE_EXTS:
                    yield f, "image"
                elif ext in VIDEO_EXTS:
                    yield f, "video"
        elif p.exists():
            yield p, "video" if p.suffix.lower() in VIDEO_EXTS else "image"
        else:
            yield p, "missing"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # ferlens' own log lines (e.g. "random init ...: predictions are meaningless") go to stderr; the handler
    # lives only for this call (on the sys.stderr of the call, so captured streams work in-process).
    core_log = logging.getLogger("core")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    level = core_log.level
    core_log.addHandler(handler)
    core_log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        return predict(args)  # the only sub-command, and argparse requires one
    finally:
        core_log.removeHandler(handler)
        core_log.setLevel(level)


def predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from core.detector import Detector
    from core.io import ImageLoadError

    if args.skip_frames < 0:
        print(f"error: --skip-frames must be >= 0, got {args.skip_frames}", file=sys.stderr)
        return 2
    try:
        det = Detector(
            model=args.model,
            weights=args.weights,  # "none" / "random": a seeded random init
            face_detector="assume_cropped" if args.assume_cropped else args.face_detector,
            framing=args.framing,
            tta="hflip" if args.tta else None,
            device=args.device,
            backend=args.backend,
            threads=args.threads if args.threads is not None else "auto",
        )
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    explainer = None
    if args.explain:
        try:
            explainer = OverlayWriter(det, args.explain, Path(args.out))
        except ImportError as exc:
            print(f"error: --explain is not available: {exc}", file=sys.stderr)
            return 2

    frames: list[pd.DataFrame] = []
    failed = 0
    n_inputs = 0
    for path, kind in iter_inputs(args.paths):
        n_inputs += 1
        if kind == "missing":
            print(f"error: {path}: no such file or directory", file=sys.stderr)
            failed += 1
            continue
        try:
            if kind == "video":
                if args.assume_cropped:
                    raise ImageLoadError(f"{path}: --assume-cropped takes images, not videos", str(path))
                df = det.detect_video(path, skip_frames=args.skip_frames, on_frame=explainer)
            else:
                df = det.detect_image(path, on_frame=explainer)
        except (ImageLoadError, OSError) as exc:
            print("error:", *(str(exc).split() or [type(exc).__name__]), file=sys.stderr)
            failed += 1
            continue
        if df.empty:
            print(f"note: {path}: no face found", file=sys.stderr)
        else:
            frames.append(df)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=det.columns)
    if "track" in table:
        table["track"] = table["track"].astype("Int64")  # image rows have no track
    table.to_csv(out, index=False)
    extra = f", {explainer.written} overlay(s) in {explainer.folder}" if explainer else ""
    log.info("wrote %d rows for %d input(s) to %s%s", len(table), n_inputs, out, extra)
    if failed:
        print(f"error: {failed} of {n_inputs} input(s) could not be read", file=sys.stderr)
        return 1
    return 0


class OverlayWriter:
    """Writes one explanation PNG per face (per track for videos) into ``<csv stem>_explain/`` beside the CSV.

    ``gradcam`` or ``shap`` (AU-region Shapley values: red for the predicted class, blue against), blended on the
    192 px crop with the AU regions outlined; the file name says input, frame, face and label.
    """

    SIZE = 192

    def __init__(self, detector, method: str, out: Path) -> None:
        from core import explain  # raises ImportError when the explanations package is missing

        self.explain = explain
        self.detector = detector
        self.method = method
        self.folder = out.with_name(f"{out.stem}_explain")
        self.written = 0
        self._inputs: dict[str, int] = {}
        self._tracks: set[tuple[str, int | None]] = set()

    def __call__(self, name: str, rgb, result) -> None:
        """The ``on_frame`` hook: every face of an image (no track), the first frame of each track of a video."""
        for k, face in enumerate(result.faces):
            if face.track is None or (name, face.track) not in self._tracks:
                self._tracks.add((name, face.track))
                self._write(name, rgb, result.frame, k, face)

    def _map(self, face, regions) -> tuple:
        from core.explain.regions import rasterise

        engine = self.detector.engine
        x = engine.prepare([face.aligned.image], self.detector.steps)
        target = int(face.raw_probs.argmax())
        with engine.exclusive() as model:
            if self.method == "gradcam":
                return self.explain.explain_cam(model, x, targets=target, method="gradcam")[0], False
            masks = rasterise(regions, engine.spec.input_size, face.aligned.output_size)
            return self.explain.region_shap(model, x, masks, target=target).pixel_map(), True

    def _write(self, name: str, rgb, frame: int, k: int, face) -> None:
        import cv2
        import numpy as np

        from core.faces import regions_for, regions_for_crop

        index = self._inputs.setdefault(name, len(self._inputs))
        if self.detector.assume_cropped:  # the AU regions in the crop's pixels, as a FER2013-framed face
            regions = regions_for_crop(face.aligned.image, "fer2013")
        else:
            regions = regions_for(face.aligned, rgb)
        heat, signed = self._map(face, regions)
        crop = cv2.resize(face.aligned.image, (self.SIZE, self.SIZE), interpolation=cv2.INTER_CUBIC)
        r = self.SIZE / face.aligned.output_size  # crop pixels -> PNG pixels, pixel centres kept
        shown = regions.transformed(np.array([[r, 0.0, 0.5 * r - 0.5], [0.0, r, 0.5 * r - 0.5]]))
        img = self.explain.heatmap_overlay(crop, heat, alpha=0.45, signed=signed, regions=shown)
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = Path(name).stem or "input"
        path = self.folder / f"{index:04d}_{stem}_f{frame}_face{k}_{face.label}_{self.method}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: could not write the overlay PNG")
        self.written += 1


if __name__ == "__main__":
    sys.exit(main())
