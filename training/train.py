"""``python -m training.train``: train a preset, with ``key=value`` overrides, resumable, DDP under torchrun.

Examples::

    python -m training.train --preset default
    python -m training.train --preset default epochs=2 optim.lr=3e-4 --limit 512 --out runs/tiny
    python -m training.train --out runs/tiny --resume          # continue a run from its config.json
    torchrun --nproc_per_node=4 -m training.train --preset hafem_compact
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from training.config import ConfigError, apply_overrides, config_to_dict, get_preset, list_presets


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train a ferlens model from a preset plus key=value overrides (dotted for nested groups, "
        "e.g. optim.lr=3e-4 data.dataset=ferplus augment.mixup=0 model_overrides.cbam=false).",
        epilog=f"presets: {', '.join(list_presets())}",
    )
    p.add_argument(
        "--preset",
        help="preset name or a config .json/.yaml (default: the run's config.json with --resume, else 'default')",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--out", help="run folder (overrides out_dir)")
    p.add_argument("--limit", type=int, help="keep at most N images per split (tiny/CI mode; data.limit=N)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--print-config", action="store_true", help="print the merged config as JSON and exit")
    p.add_argument("--list-presets", action="store_true", help="list preset names and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    return p


def resolve_config(args: argparse.Namespace):
    """Preset (or the run's own config.json when resuming without --preset) + overrides + --limit/--out."""
    if args.preset is None and args.resume and args.out and (Path(args.out) / "config.json").is_file():
        cfg = get_preset(str(Path(args.out) / "config.json"))
    else:
        cfg = get_preset(args.preset or "default")
    extra = list(args.overrides)
    if args.limit is not None:
        extra.append(f"data.limit={args.limit}")
    cfg = apply_overrides(cfg, extra)
    if args.out:
        cfg = dataclasses.replace(cfg, out_dir=args.out)
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    if args.list_presets:
        print("\n".join(list_presets()))
        return 0
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        cfg = resolve_config(args)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.print_config:
        print(json.dumps(config_to_dict(cfg), indent=2))
        return 0
    import torch.distributed as dist

    from training.datasets import DatasetError
    from training.trainer import CheckpointError, fit

    try:
        result = fit(cfg, resume=args.resume)
    except (ConfigError, DatasetError, ValueError, FileExistsError, FileNotFoundError, CheckpointError) as exc:
        logging.getLogger(__name__).debug("training failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    summary = {
        "out_dir": str(result.out_dir),
        "best_weights": str(result.best_weights),
        "best_epoch": result.best_epoch,
        "best_val_macro_f1": result.best_val_macro_f1,
        "epochs_run": len(result.history),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
