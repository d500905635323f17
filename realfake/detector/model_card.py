"""The model card (`models/MODEL_CARD.md`): what the checkpoint is, what it was trained on, how well it did."""

from __future__ import annotations

import os
from typing import Any

from realfake.core.atomic import write_text
from realfake.detector.model import ModelConfig
from realfake.detector.train_config import TrainConfig

KNOWN_LIMITS = """\
- Trained on face crops made by this pipeline (MTCNN-aligned, cut as the view above says). Other crops,
  sizes or whole photos are out of distribution: `realfake predict` cuts photos the same way.
- Real and fake sources differ in more than "generated or not" (framing, resolution, JPEG history,
  demographics; see `../shared/mirror/SOURCES.md`). Part of what the model learns may be such a shortcut;
  the per-source and cross-source results of the evaluate stage are the check.
- Generators not in the training data (newer diffusion models, face swaps, Photoshop edits) are likely
  to be missed, and face swaps and Photoshop edits are near chance even inside their own sources: what the
  default detector does at its operating point on sources and generators it never trained on, in words, is in
  the README ("Today's default detector", from `results/mirror/verdict`); this checkpoint's own figures are in
  `reports/evaluate.md` ("In words").
- The validation split chose the checkpoint (lowest val loss), so val metrics are optimistic: quote the
  test split.
- Not for decisions about people: a score is evidence about an image, not proof."""


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table cell (None as n/a)."""
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def fitness_lines(fitness: dict[str, Any] | None) -> list[str]:
    """The card's verdict on whether the model may judge photos (realfake.detector.fitness), first thing a reader sees."""
    if fitness is None:
        return []
    rule = f"validation AUC >= {fitness['min_val_auc']} on >= {fitness['min_val_faces']} faces, not the embedded sample"
    if fitness["fit"]:
        return [f"**Fit to judge** by the project's rule ({rule}): validation AUC {fmt(fitness['val_auc'])} on "
                f"{fitness['val_faces']} faces. Validation chose the checkpoint, so quote the test split.", ""]
    return ["> **Not fit to judge photos.** " + "; ".join(fitness["reasons"]) + f". Rule: {rule}. "
            "`realfake predict` prints a warning with every run of this model and marks its results.", ""]


def architecture_line(model_cfg: ModelConfig) -> str:
    """The first words of the card's model line: which network (`model.arch`) and its shape."""
    if model_cfg.member_archs is not None:  # an ensemble of different networks
        return (f"- An ensemble of {model_cfg.members} networks, logits averaged: member k is network k of "
                f"{', '.join(model_cfg.member_archs)} (`model.member_archs`), ")
    if model_cfg.arch == "npr":
        npr = model_cfg.npr
        return (f"- NPR (Tan et al. CVPR 2024): the neighbouring-pixel residual x - up2(down2(x)) into a {npr.stem_width}"
                f"-channel stem and {len(npr.widths)} stages of {npr.block} residual blocks {npr.blocks}, widths "
                f"{npr.widths}, ")
    if model_cfg.arch == "resnet":
        net = model_cfg.resnet
        return (f"- Truncated ResNet (SAFE, Li et al. KDD 2025), from scratch: a {net.stem_width}-channel 3x3 stride-2 "
                f"stem, max-pool and {len(net.widths)} stages of {net.block} residual blocks {net.blocks}, widths "
                f"{net.widths}, ")
    return f"- Compact CNN, {len(model_cfg.widths)} conv stages, widths {model_cfg.widths}, "


def patch_line(patch) -> str:
    """How an image is scored: whole, the centre crop (SAFE's crop-not-resize) or the mean of fixed patches."""
    if not patch.enabled:
        return "- Whole-image model (no patches)."
    if patch.positions == "center":
        return (f"- Crop, never resize (SAFE): trained on one random {patch.size} px crop per image; an image scores "
                "its centre crop.")
    return (f"- Patch-level (Chai et al. 2020): trained on one random {patch.size} px patch per image; an image "
            f"scores the mean p(fake) of {patch.count} patches at fixed positions (seed {patch.seed}).")


def generalize_lines(model_cfg: ModelConfig, train_cfg: TrainConfig, summary: dict[str, Any]) -> list[str]:
    """Issue 23's switches, one line each, only those that are on (docs/generalize.md)."""
    aug, lines = train_cfg.augment, []
    if model_cfg.head == "patch":
        lines.append("- Patch logits (Chai et al. 2020, `model.head: patch`): trained with the image's label on every "
                     "position of the last feature map; an image scores the mean of those logits.")
    if train_cfg.label_smoothing:
        lines.append(f"- Label smoothing {train_cfg.label_smoothing} (targets {train_cfg.label_smoothing / 2} and "
                     f"{1 - train_cfg.label_smoothing / 2}).")
    if aug.rotate_p:
        lines.append(f"- Random rotation (SAFE): p {aug.rotate_p}, up to {aug.rotate_degrees} degrees, black corners.")
    if aug.mask_p:
        lines.append(f"- Patch masking (SAFE): p {aug.mask_p}, a share in {aug.mask_ratio} of each image zeroed in "
                     f"whole {aug.mask_patch} px grid cells.")
    if train_cfg.sbi.enabled:
        made = (summary["data"]["train"].get("pseudo_fakes") or {}).get("sbi", 0)
        lines.append(f"- Self-blended pseudo-fakes (Shiohara & Yamasaki 2022, `train.sbi`): each real training face "
                     f"became a fake of kind `sbi` with p {train_cfg.sbi.p}: {made:,} drawn over the run (train only).")
    return lines


def view_line(view: dict[str, Any] | None, size: int) -> str:
    """What pixels the model sees (`sample.view`, docs/views.md)."""
    view = view or {"name": "aligned"}
    if view["name"] == "context":
        c = view.get("context") or {}
        if c.get("fit", "reject") == "shrink":
            fitting = (f"a photo too tight for that margin is cut at the widest margin down to {c.get('min_margin')} "
                       f"that needs at most {c.get('max_pad_fraction')} padding (padded at {c.get('min_margin')} if "
                       "none does), so every face gets a verdict"
                       + ("" if c.get("max_upscale") is None else "; faces needing upscaling are left out"))
        else:
            fitting = (f"faces needing more than {c.get('max_pad_fraction')} padding"
                       + (" or upscaling" if c.get("max_upscale") is not None else "") + " are left out")
        return (f"- View `context`: the aligned face at a wider margin ({c.get('margin')} x eye-to-mouth: hair, ears, "
                f"some background), resampled once from the original to {size} px and JPEG re-encoded as the resize "
                f"stage does; {fitting} (docs/views.md).")
    if view["name"] == "native":
        side = (view.get("native") or {}).get("side", size)
        return (f"- View `native`: a {side} px window of the original pixels around the aligned face, never rotated "
                "or resampled, stored lossless (docs/views.md).")
    return f"- View `aligned`: the MTCNN-aligned face crop (faces.margin), resized to {size} px (docs/views.md)."


def decision_lines(summary: dict[str, Any]) -> list[str]:
    """How the checkpoint decides (realfake/detector/verdict.py): calibration, thresholds, what they did on val."""
    op, val = summary.get("operating_point"), summary.get("verdict_val") or {}
    if not op:
        return []
    band = (f"`uncertain` for {fmt(op['t_real'])} <= p < {fmt(op['t_fake'])}" if op["t_real"] < op["t_fake"]
            else "no uncertain band (validation met both targets at one threshold)")
    lines = ["## Decision (`realfake predict`: real / uncertain / fake)", "",
             "- p(fake) is calibrated on validation by "
             + (f"Platt scaling (T = {fmt(op['temperature'], 3)}, b = {fmt(op.get('bias', 0.0), 3)}; "
                if val.get("calibration") == "platt" else f"temperature scaling (T = {fmt(op['temperature'], 3)}; ") +
             f"validation ECE {fmt(val.get('val_ece_before'))} before, {fmt(val.get('val_ece_after'))} after).",
             f"- `fake` when p >= {fmt(op['t_fake'])}: the p at which {op['target_fpr']:.0%} of validation reals are "
             f"called fake; `real` when p < {fmt(op['t_real'])}"
             + (f", letting {op['target_fnr']:.0%} of validation fakes through" if op.get("target_fnr") else "")
             + f"; {band}.",
             f"- On validation: reals called real {fmt(val.get('real_called_real'), 3)}, uncertain "
             f"{fmt(val.get('real_called_uncertain'), 3)}, fake {fmt(val.get('real_called_fake'), 3)}; fakes caught "
             f"{fmt(val.get('fake_called_fake'), 3)}, uncertain {fmt(val.get('fake_called_uncertain'), 3)}. On photos "
             "from sources never trained on, the false-alarm rate can be higher: the evaluate stage measures it "
             "per held-out source (`reports/evaluate.md`, Operating point).", ""]
    if summary.get("members", 1) > 1:
        lines.insert(2, f"- An ensemble of {summary['members']} networks (seeds train.seed + 0..{summary['members'] - 1}), logits "
                        f"averaged; members' val AUC {', '.join(fmt(a) for a in summary.get('member_val_auc', []))}.")
    return lines


def render_model_card(summary: dict[str, Any], model_cfg: ModelConfig, train_cfg: TrainConfig) -> str:
    """The model card as Markdown, from the training summary and the configs."""
    return "\n".join([*model_lines(summary, model_cfg, train_cfg), *training_lines(summary, model_cfg, train_cfg)])


def model_lines(summary: dict[str, Any], model_cfg: ModelConfig, train_cfg: TrainConfig) -> list[str]:
    """The card's title, fitness, model and data sections."""
    data = summary["data"]
    attention = f"{model_cfg.attention_type} at stages {model_cfg.stages_with_attention()}" if model_cfg.attention else "off"
    lines = [
        "# Model card: realfake detector",
        "",
        "Binary classifier of face crops: real photo (0) or generated / manipulated (1). One logit; "
        "`sigmoid(logit)` is the probability of *fake*.",
        "",
        *fitness_lines(summary.get("fitness")),
        "## Model",
        "",
        architecture_line(model_cfg) + f"{summary['params']:,} parameters ({summary['attention_params']:,} in "
        "attention blocks).",
        f"- Attention: {attention}.",
        view_line(data.get("view"), data["size"]),
        f"- Input: RGB {data['size']}x{data['size']}, pixels / 255, then (x - 0.5) / 0.5"
        + (f": member k of the ensemble sees input k of {', '.join(model_cfg.member_inputs)} (`model.member_inputs`; "
           "dwt_hh: the one-level Haar DWT diagonal (HH) band, resized back)." if model_cfg.member_inputs else
           ": the network sees its one-level Haar DWT diagonal (HH) band, resized back (`model.input: dwt_hh`)."
           if model_cfg.input == "dwt_hh" else "."),
        patch_line(train_cfg.patch),
        "- File: `models/detector.pt`, load with `realfake.detector.checkpoint.load_detector` "
        "(`torch.load(..., weights_only=True)`).",
        "",
        "## Data",
        "",
        "| split | images used | real | fake | rejected |",
        "|---|---|---|---|---|",
    ]
    for name in ("train", "val"):
        d = data[name]
        rejected = ", ".join(f"{k}: {v}" for k, v in d["rejected"].items()) or "0"
        lines.append(f"| {name} | {d['kept']} | {d['real']} | {d['fake']} | {rejected} |")
    return lines


def training_lines(summary: dict[str, Any], model_cfg: ModelConfig, train_cfg: TrainConfig) -> list[str]:
    """The card's training, metrics and known-limits sections."""
    weights = summary["class_weights"]
    return [
        "",
        "## Training",
        "",
        f"- AdamW, lr {train_cfg.lr}, weight decay {train_cfg.weight_decay}, schedule `{train_cfg.schedule}`, "
        f"batch {train_cfg.batch_size}, up to {train_cfg.epochs} epochs, seed {train_cfg.seed}.",
        f"- Loss `{train_cfg.loss}`" + (f" (gamma {train_cfg.focal_gamma}, alpha {train_cfg.focal_alpha})"
                                        if train_cfg.loss == "focal" else "")
        + f"; class weights {weights if weights else 'none (classes balanced enough)'}.",
        f"- Early stopping: running median of {train_cfg.smooth_window} val losses, patience "
        f"{train_cfg.patience}; the checkpoint is the epoch with the lowest val loss.",
        "- Augmentation: flip, random resized crop, colour jitter, random grayscale, Gaussian blur and JPEG "
        "recompression (CNNDetection recipe); probabilities in `params.yaml` `train.augment`.",
        *([f"- Chain matching (`train.augment.chain`): for real and fake alike, before the crop, a random resampling "
           f"(p {train_cfg.augment.resample_p}, scale {train_cfg.augment.resample_scale}, filters "
           f"{', '.join(train_cfg.augment.resample_filters)}), then the JPEG step (p {train_cfg.augment.jpeg_p}, "
           f"quality {train_cfg.augment.jpeg_quality})."] if train_cfg.augment.chain else []),
        *generalize_lines(model_cfg, train_cfg, summary),
        *([f"- Data profile `{summary.get('profile')}` replaces " + ", ".join(f"`{k}` = {v}" for k, v in over.items())
           + f" (params.yaml `train.profile_overrides.{summary.get('profile')}`): the values above are the ones used."]
          if (over := summary.get("profile_overrides")) else []),
        f"- Batches: `{train_cfg.sampler}`" + (" (each class half of the draws, each source an equal share of its class)"
                                               if train_cfg.sampler == "source_balanced" else "") + ".",
        # no timings here: the card is a DVC output and must not change between identical runs (logs/timings.jsonl)
        f"- Ran {summary['epochs_run']} epochs ({'stopped early' if summary['stopped_early'] else 'all'}) on "
        f"{where(summary)}.",
        "",
        "## Metrics (validation split, best epoch)",
        "",
        "| best epoch | val loss | val AUC | val accuracy |",
        "|---|---|---|---|",
        f"| {summary['best_epoch']} | {fmt(summary['best_val_loss'])} | {fmt(summary['best_val_auc'])} "
        f"| {fmt(summary['best_val_acc'])} |",
        "",
        *decision_lines(summary),
        "Test-split results come from the evaluate stage (`metrics/evaluate.json`; details in `reports/evaluate.json`).",
        "",
        "## Known limits",
        "",
        KNOWN_LIMITS,
        "",
    ]


def write_model_card(path: str | os.PathLike, summary: dict[str, Any], model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
    """Write the model card atomically."""
    write_text(path, render_model_card(summary, model_cfg, train_cfg))


def where(summary: dict) -> str:
    """Where training ran: CPU threads, or the GPU with its precision and batch."""
    if summary.get("device", "cpu") == "cuda":
        return f"CUDA ({summary.get('precision')}, batch {summary.get('batch_size')})"
    return f"{summary['threads']} CPU threads"
