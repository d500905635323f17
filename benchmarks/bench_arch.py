"""Training-step time of each architecture (`model.arch`, `model.attention`) as a ratio to today's CNN, same run.

One step = augmentation (params.yaml defaults) + forward + backward + AdamW step, batch 64, channels_last, on
the embedded sample's packed train images (`dvc repro sample` writes data/packed; --packed points elsewhere).
The arms are interleaved over `--repeats` rounds so a burst of load from other jobs hits them alike; each
arm's figure is its fastest step over all rounds (as timeit: the step least disturbed by other jobs).

    .venv/bin/python benchmarks/bench_arch.py            # table + benchmarks/results/arch.json
    .venv/bin/python benchmarks/bench_arch.py --steps 4 --repeats 1
"""

from __future__ import annotations

import argparse
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
from realfake.detector.model import ModelConfig, build_model, count_parameters  # noqa: E402
from realfake.detector.npr_net import NprConfig  # noqa: E402
from realfake.detector.packed import load_split  # noqa: E402
from realfake.detector.schedule import make_optimizer  # noqa: E402
from realfake.detector.train import set_threads  # noqa: E402
from realfake.detector.train_config import TrainConfig  # noqa: E402

PAPER = NprConfig(block="bottleneck", widths=[64, 128], blocks=[3, 4], stem_width=64)
ARMS = {
    "cnn (baseline)": ModelConfig(),
    "cnn, attention off": ModelConfig(attention=False),
    "npr": ModelConfig(arch="npr"),
    "npr, attention off": ModelConfig(arch="npr", attention=False),
    "npr widths [64, 128], stem 64": ModelConfig(arch="npr", npr=NprConfig(widths=[64, 128], stem_width=64)),
    "npr paper size (bottleneck [3, 4]), attention off": ModelConfig(arch="npr", attention=False, npr=PAPER),
}


def step_times(cfg: ModelConfig, images: torch.Tensor, steps: int, batch: int) -> list[float]:
    """Seconds of each of `steps` training steps (after one warm-up step)."""
    torch.manual_seed(0)
    model = build_model(cfg).to(memory_format=torch.channels_last).train()
    optimizer = make_optimizer(model, TrainConfig())
    prep, gen, aug = preprocessing_for(images.shape[-1]), torch.Generator().manual_seed(0), AugmentConfig()
    targets = (torch.arange(batch) % 2).float()
    times = []
    for step in range(steps + 1):
        rows = torch.randint(0, len(images), (batch,), generator=gen)
        start = time.perf_counter()
        x = to_model_input(augment_batch(images[rows], aug, gen), prep, True)
        loss = F.binary_cross_entropy_with_logits(model(x), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packed", default=str(ROOT / "data" / "packed"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "arch.json"))
    args = parser.parse_args()
    threads = set_threads(args.threads)
    split = load_split(args.packed, "train")
    images = torch.from_numpy(split.images[split.rows])
    size = int(images.shape[-1])
    runs: dict[str, list[float]] = {name: [] for name in ARMS}
    for _ in range(args.repeats):
        for name, cfg in ARMS.items():
            runs[name].append(min(step_times(cfg, images, args.steps, args.batch)))
    base = min(runs["cnn (baseline)"])
    print(f"\n{size} px, batch {args.batch}, {threads} threads, {os.cpu_count()} CPUs shared with other jobs\n")
    print("| arm | params | s/step (fastest) | vs cnn |")
    print("|---|---|---|---|")
    params = {name: count_parameters(build_model(cfg)) for name, cfg in ARMS.items()}
    for name, values in runs.items():
        print(f"| {name} | {params[name]:,} | {min(values):.3f} | x{min(values) / base:.2f} |")
    write_json(args.out, {
        "config": {"size": size, "batch": args.batch, "steps": args.steps, "repeats": args.repeats, "threads": threads},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "shared": True},
        "params": params,
        "seconds_per_step": {name: {"best": min(v), "runs": v} for name, v in runs.items()},
        "ratio_vs_cnn": {name: min(v) / base for name, v in runs.items()},
    })
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
