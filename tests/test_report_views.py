"""Pictures and report lines that used to mislead (issue 16, item 12): each case on real images or real tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from realfake.evaluation.baselines import shortcut_verdict
from realfake.evaluation.breakdowns import (
    BreakdownConfig,
    bin_column,
    breakdowns,
    disparity,
    disparity_sentence,
    group_rates,
)
from realfake.evaluation.figures import LINE, PAD, TILE, cam_sheet, fit_text, gallery, reliability_png
from realfake.evaluation.metrics import calibration

REPO = Path(__file__).resolve().parents[1]
RED = np.array([0xD8, 0x57, 0x3B])


def faces(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """n noisy uint8 3×size×size 'faces' (dark, so captions on white stand out)."""
    return np.random.default_rng(seed).integers(0, 120, (n, 3, size, size), dtype=np.uint8)


def scored(n: int, p: float | np.ndarray, long_names: bool = True) -> pd.DataFrame:
    source = "a-very-long-source-name-for-captions" if long_names else "src"
    return pd.DataFrame({"y": np.arange(n) % 2, "p_fake": np.broadcast_to(p, n).astype(float), "source": source})


def caption_bands_stay_inside_tiles(path: Path, caption_tops: list[int], tiles: int) -> None:
    """No caption pixel within PAD px of a boundary between two tiles: neighbouring captions cannot touch."""
    img = np.asarray(Image.open(path).convert("L"))
    for top in caption_tops:
        band = img[top:top + 2 * LINE]
        for k in range(1, tiles):
            seam = band[:, k * TILE - PAD:k * TILE + PAD]
            assert (seam > 200).all(), f"caption text crosses the seam between tiles {k - 1} and {k} at y={top}"


def test_reliability_diagram_shows_a_dot_when_every_prediction_is_in_one_bin(tmp_path):
    y = np.array([0, 1] * 20)
    p = np.full(40, 0.5004)  # an untrained model: every score in one bin
    curve = calibration(y, p, 15)["curve"]
    assert len(curve) == 1  # one point: a line chart of this draws nothing
    reliability_png(curve, 15, 0.0, tmp_path / "cal.png")
    rgb = np.asarray(Image.open(tmp_path / "cal.png").convert("RGB")).astype(int)
    dot = (np.abs(rgb - RED).sum(-1) < 30)
    assert dot.sum() > 50  # the bin's marker is drawn
    # and the DVC chart of the same data draws dots on fixed 0..1 axes, not only a line through one point
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    (cal,) = [next(iter(p.values())) for p in plots if isinstance(p, dict) and next(iter(p)).startswith("Calibration")]
    template = json.loads((REPO / ".dvc" / "plots" / f"{cal['template']}.json").read_text())
    curve_layer = template["layer"][-1]
    assert curve_layer["mark"]["point"] and curve_layer["encoding"]["x"]["scale"]["domain"] == [0, 1]
    assert "<DVC_METRIC_DATA>" in json.dumps(template)


def test_error_gallery_captions_do_not_overlap(tmp_path):
    n = 6
    frame = scored(2 * n, np.where(np.arange(2 * n) % 2, 0.2, 0.9))  # every face wrong at 0.5
    gallery(faces(2 * n), frame, 0.5, n, tmp_path / "errors.png")
    img = Image.open(tmp_path / "errors.png")
    assert img.size[0] == n * TILE
    row_h = LINE + TILE + 2 * LINE + PAD
    caption_bands_stay_inside_tiles(tmp_path / "errors.png", [LINE + TILE, row_h + LINE + TILE], n)


def test_grad_cam_captions_do_not_overlap(tmp_path):
    n = 7
    frame = scored(n, np.linspace(0.1, 0.9, n))
    cams = np.random.default_rng(1).random((n, 32, 32)).astype(np.float32)
    correct = (frame["p_fake"] >= 0.5) == (frame["y"] == 1)
    cam_sheet(faces(n), cams, frame, correct, tmp_path / "gradcam.png")
    size = Image.open(tmp_path / "gradcam.png").size
    assert size[0] == n * TILE and size[1] > 2 * TILE + 2 * LINE + PAD  # the colour bar below the grid
    caption_bands_stay_inside_tiles(tmp_path / "gradcam.png", [2 * TILE], n)


def test_grad_cam_has_a_colour_bar_and_unambiguous_captions(tmp_path):
    from realfake.evaluation.figures import verdict_caption

    n = 4
    frame = scored(n, np.array([0.9, 0.1, 0.2, 0.8]))  # y = 0, 1, 0, 1: real called fake, fake called real, ...
    correct = (frame["p_fake"] >= 0.5) == (frame["y"] == 1)
    cams = np.random.default_rng(1).random((n, 32, 32)).astype(np.float32)
    cam_sheet(faces(n), cams, frame, correct, tmp_path / "gradcam.png")
    rgb = np.asarray(Image.open(tmp_path / "gradcam.png").convert("RGB")).astype(int)
    bar = rgb[2 * TILE + 2 * LINE + PAD:]  # under the captions
    blue, red = np.array([0, 0, 255]), np.array([255, 0, 0])
    left, right = bar[:, PAD + 2], bar[:, n * TILE - PAD - 3]
    assert (np.abs(left - blue).sum(-1) < 20).any() and (np.abs(right - red).sum(-1) < 20).any()
    assert (bar.sum(-1) < 200).sum() > 30  # its labels are drawn
    assert [verdict_caption(bool(y), bool(p >= 0.5)) for y, p in zip(frame["y"], frame["p_fake"], strict=True)] == [
        "real, called fake", "fake, called real", "real, called real", "fake, called fake"]


def test_quality_band_labels_are_readable_in_the_sample_chart():
    from realfake.sample.stage import distribution_plot, readable_bands

    assert readable_bands(["face_px<114.61", "face_px 114.61-240.3", "face_px>=240.3"]) == {
        "face_px<114.61": "face_px < 115", "face_px 114.61-240.3": "face_px 115–240", "face_px>=240.3": "face_px ≥ 240"}
    # rounding that would merge two bands keeps the exact edges
    assert len(set(readable_bands(["x<1.001", "x 1.001-1.002", "x>=1.002"]).values())) == 3
    meta = pd.DataFrame({"label": ["real", "fake"] * 6, "face_px": np.linspace(80, 300, 12), "gender": "female"})
    table = distribution_plot(meta, meta, ("gender",), {"face_px": [-np.inf, 114.61, 240.3, np.inf]})
    values = set(table["value"])
    assert {"face_px < 115", "face_px 115–240", "face_px ≥ 240", "gender=female"} <= values
    assert not any("face_px=" in v for v in values)


def test_no_chart_axis_is_labelled_y_and_robustness_is_zoomed():
    plots = {next(iter(p)): next(iter(p.values())) for p in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
             if isinstance(p, dict)}
    for name, p in plots.items():
        fields = set(p["y"].values()) if isinstance(p.get("y"), dict) else {p.get("y")}
        if len(fields) > 1:  # DVC titles such an axis "y"
            assert p.get("y_label"), f"{name}: {sorted(fields)} share one axis without y_label"
    (robust,) = [p for name, p in plots.items() if name.startswith("Robustness")]
    template = json.loads((REPO / ".dvc" / "plots" / f"{robust['template']}.json").read_text())
    x = template["encoding"]["x"]
    assert x["scale"]["zero"] is False and x["stack"] is None and template["mark"]["type"] != "bar"


def test_fit_text_cuts_to_the_width():
    from realfake.evaluation.figures import _font

    font = _font()
    cut = fit_text(font, "stylegan-140k-and-more-text", 60)
    assert font.getlength(cut) <= 60 and cut.endswith("…")
    assert fit_text(font, "ffhq", 60) == "ffhq"


def test_quantile_bins_are_ordered_by_value_not_as_text():
    values = pd.Series([2.5, 3.0, 4.0, 9.0, 10.5, 20.0, 35.0, 44.0, 60.0, 75.0, 88.0, 99.0])
    binned = bin_column(values, quantiles=4)
    df = pd.DataFrame({"y": [0, 1] * 6, "p_fake": np.linspace(0, 1, 12), "sharpness_bin": binned})
    rows = group_rates(df, "sharpness_bin", 0.5)["sharpness_bin"].tolist()
    lows = [float(r.split("–")[0]) for r in rows]
    assert lows == sorted(lows) and len(rows) == 4  # as text, "10.5…" would sort before "2.5…"


def test_fixed_edge_bins_start_at_the_configured_edge():
    binned = bin_column(pd.Series([0.0, 3.0, 16.0, 31.0, 50.0]), edges=(0, 15, 30, 45, 180))
    assert list(binned.astype(str)) == ["0–15", "0–15", "15–30", "30–45", "45–180"]  # not "-0.001–15"


def test_a_column_with_one_value_is_one_group_not_missing():
    df = pd.DataFrame({"y": [0, 1] * 10, "p_fake": np.linspace(0, 1, 20), "source": "s",
                       "jpeg_quality": 75, "sharpness": np.linspace(1, 50, 20), "yaw": 0.0})
    bins = breakdowns(df, 0.5, BreakdownConfig())["bins"]
    assert [(r["jpeg_quality_bin"], r["n"]) for r in bins["jpeg_quality"]] == [("75", 20)]
    assert [r["abs_yaw_bin"] for r in bins["abs_yaw"]] == ["0–15"]


def test_disparity_is_reported_as_a_sentence():
    rates = pd.DataFrame({"g": ["a", "b", "c"], "n": [30, 25, 5], "accuracy": [0.9, 0.6, 0.5],
                          "fpr": [0.1, 0.4, 0.5], "fnr": [0.1, 0.2, 0.0]})
    text = disparity_sentence(disparity(rates, "g", 20))
    assert text == ("Largest disparity: false-positive rate (real called fake) 4.00× as high for b (0.400) "
                    "as for a (0.100); groups with at least 20 faces.")
    none = disparity_sentence(disparity(rates, "g", 100))
    assert none == "Disparity ratio: not computed (fewer than 2 groups with >= 100 faces)."
    assert "{" not in text + none


def test_disparity_sentence_with_a_zero_rate():
    rates = pd.DataFrame({"g": ["a", "b"], "n": [30, 30], "accuracy": [1.0, 0.5], "fpr": [0.0, 0.5], "fnr": [0.0, 0.5]})
    assert "ratio infinite" in disparity_sentence(disparity(rates, "g", 20))


@pytest.mark.parametrize(("other", "cnn", "says"), [(0.935, 0.775, "better than the CNN"),
                                                      (0.79, 0.775, "about as well as the CNN"),
                                                      (0.60, 0.775, "clearly worse than the CNN")])
def test_shortcut_warning_says_what_the_numbers_say(other, cnn, says):
    y = np.array([0] * 1000 + [1] * 1000)
    real = (np.arange(1000) + 0.5) / 1000

    def with_auc(auc: float) -> np.ndarray:  # every fake scored `auc`: above exactly that share of the reals
        return np.concatenate([real, np.full(1000, auc)])

    verdict = shortcut_verdict(y, with_auc(cnn), with_auc(other), margin=0.03)
    assert verdict["other_auc"] == pytest.approx(other) and verdict["cnn_auc"] == pytest.approx(cnn)
    assert says in verdict["text"]
    if says == "better than the CNN":  # the old text: "about as well as the CNN (AUC 0.935 vs 0.775, within 0.03)"
        assert "about as well" not in verdict["text"] and "within" not in verdict["text"]


def test_sample_distribution_chart_draws_one_bar_per_value(tmp_path):
    from realfake.sample.stage import write_distribution_plots

    rows = [{"attribute": a, "value": f"{a}={v}", "label": lab, "phase": ph, "share": 0.5}
            for a, vs in (("gender", ("female", "male")), ("age_group", ("0-12", "20-29")))
            for v in vs for lab in ("real", "fake") for ph in ("before", "after")]
    paths = write_distribution_plots(pd.DataFrame(rows), tmp_path)
    assert sorted(p.name for p in paths) == ["fake_after.csv", "fake_before.csv", "real_after.csv", "real_before.csv"]
    for path in paths:  # one row per value: a bar chart of one file has nothing to stack
        table = pd.read_csv(path)
        assert list(table.columns) == ["value", "share"] and not table["value"].duplicated().any() and len(table) == 4
    plots = {next(iter(p)): next(iter(p.values())) for p in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
             if isinstance(p, dict)}
    charted = {f for name, p in plots.items() if name.startswith("Sample") for f in p["y"]}
    assert charted == {f"plots/sample/{p.name}" for p in paths}
