"""Cost of chain matching (`train.augment.chain`) and of issue 23's switches (docs/generalize.md) as ratios to
today's augmentation and training step, same run.

Issue 23's rows: SAFE's rotation, colour jitter (p 1, 0.5s), patch masking, all of SAFE's augmentations with its
crop-not-resize (an 80 px random crop of the 96 px context view instead of the random resized crop: the model then
sees fewer pixels), self-blended pseudo-fakes (train.sbi, p 0.5, before augmenting), label smoothing, and the
model-side switches (the Haar HH input, the truncated ResNet, the patch-logit head) on today's augmentation.

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
from realfake.detector.losses import BinaryLoss  # noqa: E402
from realfake.detector.model import ModelConfig, build_model  # noqa: E402
from realfake.detector.packed import load_split  # noqa: E402
from realfake.detector.patches import random_patches  # noqa: E402
from realfake.detector.sbi import SbiConfig, add_pseudo_fakes  # noqa: E402
from realfake.detector.schedule import make_optimizer  # noqa: E402
from realfake.detector.train import set_threads  # noqa: E402
from realfake.detector.train_config import TrainConfig  # noqa: E402

TODAY = AugmentConfig()
SAFE_JITTER = {"jitter_p": 1.0, "brightness": 0.5, "contrast": 0.5, "saturation": 0.5}
SAFE = dataclasses.replace(TODAY, crop_p=0.0, rotate_p=1.0, mask_p=0.5, **SAFE_JITTER)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row: the augmentation, and what else differs from today's step (crop, pseudo-fakes, loss, model)."""

    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    crop: int | None = None  # a random crop of this side after augmenting (train.patch.size), None: whole image
    sbi: SbiConfig = dataclasses.field(default_factory=SbiConfig)
    smoothing: float = 0.0
    model: str = "cnn"  # a key of MODELS


MODELS = {
    "cnn": ModelConfig(),
    "cnn, dwt_hh": ModelConfig(input="dwt_hh"),
    "resnet": ModelConfig(arch="resnet", attention=False),
    "resnet, dwt_hh, patch head": ModelConfig(arch="resnet", attention=False, input="dwt_hh", head="patch"),
}
SETTINGS = {
    "today (baseline)": Setting(),
    "chain, jpeg_p 0.1": Setting(dataclasses.replace(TODAY, chain=True)),
    "chain, jpeg_p 0.5": Setting(dataclasses.replace(TODAY, chain=True, jpeg_p=0.5)),
    "chain, resample_p 1, jpeg_p 1": Setting(dataclasses.replace(TODAY, chain=True, resample_p=1.0, jpeg_p=1.0)),
    "+ rotation p 1 (SAFE)": Setting(dataclasses.replace(TODAY, rotate_p=1.0)),
    "+ jitter p 1, 0.5 (SAFE)": Setting(dataclasses.replace(TODAY, **SAFE_JITTER)),
    "+ patch mask p 0.5 (SAFE)": Setting(dataclasses.replace(TODAY, mask_p=0.5)),
    "SAFE augmentations, resized crop kept": Setting(dataclasses.replace(SAFE, crop_p=0.5)),
    "SAFE augmentations + 80 px crop, no resize": Setting(SAFE, crop=80),
    "+ self-blended pseudo-fakes p 0.5": Setting(sbi=SbiConfig(p=0.5)),
    "+ label smoothing 0.1": Setting(smoothing=0.1),
    "model: CNN + dwt_hh input": Setting(model="cnn, dwt_hh"),
    "model: truncated ResNet (1.44 M)": Setting(model="resnet"),
    "model: ResNet + dwt_hh + patch head": Setting(model="resnet, dwt_hh, patch head"),
}


def timed(batches: list[torch.Tensor], targets: torch.Tensor, setting: Setting, train_step) -> list[tuple[float, float]]:
    """Per batch: seconds spent preparing the batch (pseudo-fakes, augmentation, crop), and for the whole step."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for images in batches:
        start = time.perf_counter()
        x, y, _ = add_pseudo_fakes(images, targets, setting.sbi, gen)
        x = augment_batch(x, setting.augment, gen)
        if setting.crop:
            x = random_patches(x, setting.crop, gen)
        augmented = time.perf_counter()
        train_step(x, y, setting)
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
    parser.add_argument("--crop", type=int, default=80, help="side of SAFE's crop-not-resize row (< image side)")
    parser.add_argument("--only", nargs="*", default=[], help="rows whose name contains one of these words "
                        "(and the baseline), e.g. --only SAFE pseudo model")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    split = load_split(args.packed, "train")
    images = torch.from_numpy(split.images[split.rows])
    gen = torch.Generator().manual_seed(0)
    batches = [images[torch.randint(0, len(images), (args.batch,), generator=gen)] for _ in range(args.batches)]
    models = {name: build_model(cfg).to(memory_format=torch.channels_last).train() for name, cfg in MODELS.items()}
    optimizers = {name: make_optimizer(model, TrainConfig()) for name, model in models.items()}
    prep = preprocessing_for(int(images.shape[-1]))
    targets = (torch.arange(args.batch) % 2).float()

    def train_step(x: torch.Tensor, y: torch.Tensor, setting: Setting) -> None:
        model, optimizer = models[setting.model], optimizers[setting.model]
        logits = model(to_model_input(x, prep, True))
        loss = (BinaryLoss("bce", smoothing=setting.smoothing)(logits, y) if setting.smoothing or logits.ndim == 2
                else F.binary_cross_entropy_with_logits(logits, y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if args.crop >= images.shape[-1]:
        parser.error(f"--crop {args.crop} must be smaller than the {images.shape[-1]} px packed images")
    settings = {name.replace("80 px", f"{args.crop} px"): dataclasses.replace(s, crop=args.crop) if s.crop else s
                for name, s in SETTINGS.items()
                if not args.only or name == "today (baseline)" or any(word in name for word in args.only)}
    for setting in {s.model: s for s in settings.values()}.values():
        timed(batches[:2], targets, setting, train_step)  # warm-up, each model
    runs: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in settings}
    for _ in range(args.repeats):
        for name, setting in settings.items():
            runs[name].append(timed(batches, targets, setting, train_step))
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
