"""The `attributes:` section of params.yaml (read with realfake.core.params.load_section) and the model's heads."""

from __future__ import annotations

from dataclasses import dataclass, field

from realfake.core.errors import UserError
from realfake.core.vocab import DEFAULT_AGE_BINS, GENDERS, RACE_GROUPS, age_group_labels

HEADS = ("gender", "age_group", "race_group")


@dataclass
class AttributesConfig:
    """Params of the attributes stage (params.yaml section `attributes`)."""

    train_source: str = "utkface"  # the source whose file-name labels train the model
    age_bins: list[int] = field(default_factory=lambda: list(DEFAULT_AGE_BINS))  # [lo, hi) years
    image_size: int = 64  # aligned crops are downscaled to this side
    val_fraction: float = 0.2  # share of train_source groups held out for validation
    seed: int = 0
    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])  # conv channels per stage
    convs_per_stage: int = 1  # 3x3 conv-BN-ReLU layers before each 2x2 max-pool
    dropout: float = 0.2
    threads: int = 1  # torch CPU threads: 2 ran 6x slower than 1 on a busy 2-core machine (spin-waiting)

    def validate(self) -> None:
        """Raise UserError on values that cannot work."""
        bins = list(self.age_bins)
        checks = {
            "age_bins": len(bins) >= 3 and all(a < b for a, b in zip(bins[:-1], bins[1:], strict=True)),
            "image_size": self.image_size >= 16,
            "val_fraction": 0 <= self.val_fraction < 1,
            "epochs": self.epochs >= 0,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "widths": len(self.widths) >= 1 and all(w >= 1 for w in self.widths),
            "convs_per_stage": self.convs_per_stage >= 1,
            "threads": self.threads >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise UserError(f"attributes: invalid value for {bad}")

    def classes(self) -> dict[str, list[str]]:
        """Class names per head, in output order."""
        return {"gender": list(GENDERS), "age_group": age_group_labels(self.age_bins), "race_group": list(RACE_GROUPS)}
