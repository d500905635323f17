"""Training-step throughput: tuned CPU settings vs the same model in default eager settings.

Each setting runs in its own child process, because the malloc variables (MALLOC_MMAP_MAX_,
MALLOC_TRIM_THRESHOLD_) must be in the environment before Python starts, and torch's thread pool can
only be sized once per process.

    .venv/bin/python benchmarks/bench_train.py            # table + benchmarks/results/train.json
    .venv/bin/python benchmarks/bench_train.py --quick    # fewer steps, one repeat
    .venv/bin/python benchmarks/bench_train.py --with-augment  # add the augmentation cost

The machine may be shared: each setting is run `--repeats` times, interleaved, and the best run is
reported (the least disturbed one); the spread is in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
DROP_ENV = (*MALLOC_ENV, "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")

# name: (channels_last, threads (0: torch's default), malloc env, augmentation, extra env)
SETTINGS = {
    "eager default (baseline)": (False, 0, False, False, {}),
    "eager, threads=1": (False, 1, False, False, {}),
    "channels_last + threads=1": (True, 1, False, False, {}),
    "channels_last + threads=2": (True, 2, False, False, {}),
    "channels_last + threads=2 + malloc env": (True, 2, True, False, {}),
    "channels_last + threads=1 + malloc env": (True, 1, True, False, {}),
    "channels_last + threads=2 + malloc env + OMP passive": (True, 2, True, False, {"OMP_WAIT_POLICY": "PASSIVE"}),
}
AUGMENT_SETTING = ("as above + augmentation (full train step)", (True, 2, True, True, {"OMP_WAIT_POLICY": "PASSIVE"}))


def child(args: argparse.Namespace) -> None:
    """Time `args.steps` training steps of the default model on random uint8 batches; print JSON."""
    import torch
    import torch.nn.functional as F

    from realfake.detector.augment import AugmentConfig, augment_batch
    from realfake.detector.checkpoint import preprocessing_for, to_model_input
    from realfake.detector.model import ModelConfig, build_model
    from realfake.detector.schedule import make_optimizer
    from realfake.detector.train import set_threads
    from realfake.detector.train_config import TrainConfig

    threads = set_threads(args.threads) if args.threads else torch.get_num_threads()
    torch.manual_seed(0)
    model = build_model(ModelConfig(attention=args.attention, attention_type=args.attention_type))
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, TrainConfig())
    prep, gen, aug = preprocessing_for(args.size), torch.Generator().manual_seed(0), AugmentConfig()
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8)
    targets = (torch.arange(args.batch) % 2).float()
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        batch = augment_batch(images, aug, gen) if args.augment else images
        loss = F.binary_cross_entropy_with_logits(model(to_model_input(batch, prep, args.channels_last)), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    print(json.dumps({"images_per_s": args.batch * len(times) / sum(times), "threads": threads}))


def run_setting(name: str, args: argparse.Namespace) -> float:
    """Run one setting in a fresh process with the right environment; its images/s."""
    channels_last, threads, malloc, augment, extra = SETTINGS[name]
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env.update(MALLOC_ENV if malloc else {})
    env.update(extra)
    cmd = [sys.executable, __file__, "--child", "--threads", str(threads), "--size", str(args.size),
           "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--attention-type", args.attention_type]
    cmd += ["--channels-last"] if channels_last else []
    cmd += ["--augment"] if augment else []
    cmd += [] if args.attention else ["--no-attention"]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--augment", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--only", help="run only the settings whose name contains this text (and the baseline)")
    parser.add_argument("--no-attention", dest="attention", action="store_false")
    parser.add_argument("--attention-type", default="cbam")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--with-augment", action="store_true", help="add a row with augmentation in the step")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repeats (2 gives a spread, ~4 min)")
    parser.add_argument("--quick", action="store_true", help="4 steps, 1 repeat")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train.json"))
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.steps, args.repeats = 3, 1
    if args.with_augment:
        SETTINGS[AUGMENT_SETTING[0]] = AUGMENT_SETTING[1]
    names = [n for n in SETTINGS if not args.only or args.only in n or n == "eager default (baseline)"]
    runs: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.repeats):  # interleaved, so a burst of load from others hits all settings alike
        for name in names:
            runs[name].append(run_setting(name, args))
    baseline = max(runs["eager default (baseline)"])
    print(f"\nmodel: attention={args.attention} ({args.attention_type}), {args.size}px, batch {args.batch}; "
          f"{os.cpu_count()} CPUs, shared with other jobs: numbers are noisy\n")
    print(f"| setting | images/s (best of {args.repeats}) | all runs | vs baseline |")
    print("|---|---|---|---|")
    for name, values in runs.items():
        print(f"| {name} | {max(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} | x{max(values) / baseline:.2f} |")
    result = {
        "config": {k: getattr(args, k) for k in ("attention", "attention_type", "size", "batch", "steps", "repeats")},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "shared": True},
        "images_per_s": {name: {"best": max(v), "runs": v} for name, v in runs.items()},
        "speedup_vs_baseline": {name: max(v) / baseline for name, v in runs.items()},
    }
    sys.path.insert(0, str(ROOT))
    from realfake.core.atomic import write_json

    write_json(args.out, result)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
