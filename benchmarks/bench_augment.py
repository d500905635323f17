"""Cost of chain-matching augmentation (`train.augment.chain`) as ratios to today's augmentation, same run.

Two figures per setting over the same `--batches` batches of the embedded sample's packed train images (`dvc repro sample` writes data/packed; --packed points
elsewhere): the augmentation alone, and a whole training step (augmentation + the default CNN's forward,
backward and AdamW step), which is what an epoch costs. Each batch's time is its best of `--repeats`
interleaved rounds (the round least disturbed by other jobs on a shared machine), summed over the batches.

    .venv/bin/python benchmarks/bench_augment.py         # table + benchmarks/results/augment.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from realfake.core.atomic import write_json  # noqa: E402
from realfake.detector.augment import AugmentConfig, augment_batch  # noqa: E402
from realfake.detector.checkpoint import preprocessing_for, to_model_input  # noqa: E402
from realfake.detector.model import ModelConfig, build_model  # noqa: E402
from realfake.detector.packed import load_split  # noqa: E402
from realfake.detector.schedule import make_optimizer  # noqa: E402
from realfake.detector.train import set_threads  # noqa: E402
from realfake.detector.train_config import TrainConfig  # noqa: E402

TODAY = AugmentConfig()
SETTINGS = {
    "today (baseline)": TODAY,
    "chain, jpeg_p 0.1": dataclasses.replace(TODAY, chain=True),
    "chain, jpeg_p 0.5": dataclasses.replace(TODAY, chain=True, jpeg_p=0.5),
    "chain, resample_p 1, jpeg_p 1": dataclasses.replace(TODAY, chain=True, resample_p=1.0, jpeg_p=1.0),
}


def timed(batches: list[torch.Tensor], aug: AugmentConfig, train_step) -> list[tuple[float, float]]:
    """Per batch: seconds spent augmenting, and seconds for the whole step."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for images in batches:
        start = time.perf_counter()
        x = augment_batch(images, aug, gen)
        augmented = time.perf_counter()
        train_step(x)
        out.append((augmented - start, time.perf_counter() - start))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packed", default=str(ROOT / "data" / "packed"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "augment.json"))
    args = parser.parse_args()
    threads = set_threads(args.threads)
    split = load_split(args.packed, "train")
    images = torch.from_numpy(split.images[split.rows])
    gen = torch.Generator().manual_seed(0)
    batches = [images[torch.randint(0, len(images), (args.batch,), generator=gen)] for _ in range(args.batches)]
    model = build_model(ModelConfig()).to(memory_format=torch.channels_last).train()
    optimizer, prep = make_optimizer(model, TrainConfig()), preprocessing_for(int(images.shape[-1]))
    targets = (torch.arange(args.batch) % 2).float()

    def train_step(x: torch.Tensor) -> None:
        loss = F.binary_cross_entropy_with_logits(model(to_model_input(x, prep, True)), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    timed(batches[:2], TODAY, train_step)  # warm-up
    runs: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in SETTINGS}
    for _ in range(args.repeats):
        for name, aug in SETTINGS.items():
            runs[name].append(timed(batches, aug, train_step))
    best = {name: tuple(sum(min(r[b][k] for r in v) for b in range(args.batches)) for k in (0, 1))
            for name, v in runs.items()}
    base_aug, base_step = best["today (baseline)"]
    print(f"\n{images.shape[-1]} px, batch {args.batch}, {args.batches} batches, {threads} threads, "
          f"{os.cpu_count()} CPUs shared with other jobs\n")
    print("| setting | augment s/batch | vs today | step s/batch | vs today |")
    print("|---|---|---|---|---|")
    for name, (aug_s, step_s) in best.items():
        print(f"| {name} | {aug_s / args.batches:.4f} | x{aug_s / base_aug:.2f} | {step_s / args.batches:.3f} "
              f"| x{step_s / base_step:.2f} |")
    write_json(args.out, {
        "config": {"size": int(images.shape[-1]), "batch": args.batch, "batches": args.batches,
                   "repeats": args.repeats, "threads": threads},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "shared": True},
        "seconds": {name: {"augment": a, "step": t} for name, (a, t) in best.items()},
        "augment_ratio_vs_today": {name: a / base_aug for name, (a, _) in best.items()},
        "step_ratio_vs_today": {name: t / base_step for name, (_, t) in best.items()},
    })
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
