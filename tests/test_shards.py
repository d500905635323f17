"""WebDataset shards: written by the sample stage, streamed by the trainer, re-sampled by index without rewriting."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.core.shard_manifest import INDEX_NAME, read_index, write_index
from realfake.detector.batches import train_batches
from realfake.detector.packed import load_split
from realfake.detector.run import TrainRun
from realfake.detector.shard_stream import ShardInputConfig, load_shard_split
from realfake.detector.train import train
from realfake.detector.train_config import TrainConfig
from realfake.sample.config import SampleConfig, ShardsConfig
from realfake.sample.resample import resample_index
from realfake.sample.shards import write_stage_shards
from realfake.sample.stage import run_sample

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
SIZE = 32
# the embedded sample's single-class archives (dfdc and ciplab mix both classes in one ZIP)
ARCHIVES = {"ffhq": "real", "ffhq-1024": "real", "lfw": "real", "utkface": "real",
            "stylegan-140k": "fake", "tpdne": "fake", "boredhumans": "fake", "generated-faces": "fake"}
SAMPLE_CFG = SampleConfig(strata=("gender",), min_per_stratum=2, seed=0, holdout_sources=("utkface",),
                          view="aligned")  # the resized images; a context view is made by hand below


def centre_square(img: Image.Image, size: int) -> Image.Image:
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)


def embedded_sample_metadata(root: Path) -> pd.DataFrame:
    """A metadata table over the embedded sample's photos, each resized to SIZE px PNG like the resize stage."""
    rows, rng = [], np.random.default_rng(0)
    for source, label in ARCHIVES.items():
        with zipfile.ZipFile(SAMPLE / f"{source}.zip") as zf:
            for name in sorted(n for n in zf.namelist() if n.lower().endswith(".jpg")):
                img = Image.open(io.BytesIO(zf.read(name)))
                img.draft("RGB", (SIZE * 2, SIZE * 2))  # decode big JPEGs at a reduced scale: fast
                face_id = f"{source}-{len(rows):04d}"
                path = Path("data/resized") / source / f"{face_id}.png"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                centre_square(img.convert("RGB"), SIZE).save(root / path)
                rows.append({"face_id": face_id, "label": label, "source": source, "split_group": face_id,
                             "gender": rng.choice(["male", "female"]), "age_group": "20-39", "race_group": "x",
                             "resized_path": str(path)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """The sample stage with shards on, run over the embedded sample in a temp project directory."""
    root = tmp_path_factory.mktemp("project")
    old = os.getcwd()
    os.chdir(root)
    try:
        embedded_sample_metadata(root).to_parquet("data/metadata.parquet")
        run_sample(Path("data/metadata.parquet"), SAMPLE_CFG, SIZE, Path("data/packed"), Path("data/splits.parquet"),
                   Path("metrics/sample.json"), Path("plots/sample/distributions.csv"))
        cfg = ShardsConfig(enabled=True, max_count=40)
        write_stage_shards(Path("data/metadata.parquet"), Path("data/splits.parquet"), Path("data/shards"), cfg,
                           SAMPLE_CFG.seed, SIZE, Path("reports/shards.json"))
    finally:
        os.chdir(old)
    return root


def shard_input(root: Path, **kw) -> ShardInputConfig:
    return ShardInputConfig(**{"location": str(root / "data" / "shards"), "shuffle_buffer": 50, "workers": 2, **kw})


def digest(images: torch.Tensor) -> list[str]:
    return [hashlib.sha1(np.ascontiguousarray(x)).hexdigest() for x in images.numpy()]


def epoch_images(split, cfg: TrainConfig, seed: int) -> tuple[list[int], Counter]:
    """Batch sizes and the multiset of images (by hash) of one epoch, before augmentation."""
    sizes, seen = [], Counter()
    for images, targets in train_batches(split, cfg, torch.Generator().manual_seed(seed)):
        assert images.dtype == torch.uint8 and len(images) == len(targets)
        sizes.append(len(images))
        seen.update(digest(images))
    return sizes, seen


def file_states(folder: Path) -> dict[str, tuple[int, int, str]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------- writing


def test_stage_writes_every_face_once_with_the_packed_pixels(staged):
    import json

    report = json.loads((staged / "reports" / "shards.json").read_text())
    metadata = pd.read_parquet(staged / "data" / "metadata.parquet")
    index = pd.read_parquet(staged / "data" / "shards" / INDEX_NAME)
    assert report["in"] == len(metadata) == report["written"] + sum(report["rejected"].values())
    assert report["written"] == len(index) and report["rejected"] == {}
    assert sorted(index["face_id"]) == sorted(metadata["face_id"])  # placed, unplaced and held out alike
    assert report["shards"] == index["shard"].nunique() == -(-len(index) // 40)  # max_count=40 per shard
    # the first draw's splits sit together: streaming its train split opens train shards only
    order = index["split"].fillna("none").tolist()
    firsts = [order.index(s) for s in ("train", "val", "test", "holdout", "none") if s in order]
    assert firsts == sorted(firsts)
    for split in ("train", "val", "test", "holdout"):
        packed = load_split(staged / "data" / "packed", split, SIZE)
        rows = index[index["split"] == split].set_index("face_id")
        assert sorted(rows.index) == sorted(packed.meta["face_id"])
        members = read_members(staged / "data" / "shards", rows.loc[packed.meta["face_id"]])
        for i, face_id in enumerate(packed.meta["face_id"]):
            assert np.array_equal(members[face_id], packed.images[packed.rows[i]]), face_id


def read_members(folder: Path, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """face_id -> 3×S×S decoded from the shard member named by the manifest, read with plain tarfile."""
    out = {}
    for shard, group in rows.groupby("shard"):
        with tarfile.open(folder / shard) as tar:
            for face_id, rec in group.iterrows():
                data = tar.extractfile(f"{rec['key']}.png").read()
                out[face_id] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).transpose(2, 0, 1)
    return out


def test_shards_are_byte_identical_on_a_rewrite(staged, tmp_path):
    cfg = ShardsConfig(enabled=True, max_count=40)
    os.chdir(staged)
    try:
        write_stage_shards(Path("data/metadata.parquet"), Path("data/splits.parquet"), tmp_path / "again", cfg,
                           SAMPLE_CFG.seed, SIZE, tmp_path / "shards.json")
    finally:
        os.chdir(REPO)
    first, again = file_states(staged / "data" / "shards"), file_states(tmp_path / "again")
    assert {k: v[2] for k, v in first.items()} == {k: v[2] for k, v in again.items()}  # same dvc.lock hashes


def test_bad_files_are_rejected_with_reasons_and_disabled_writes_an_empty_index(tmp_path):
    Image.new("RGB", (SIZE, SIZE)).save(tmp_path / "ok.png")
    Image.new("RGB", (SIZE * 2, SIZE * 2)).save(tmp_path / "big.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    pd.DataFrame({"face_id": list("abcd"), "split": "train", "label": "real", "source": "s",
                  "split_group": list("abcd"), "stratum": "x", "holdout_for": None}).to_parquet(tmp_path / "splits.parquet")
    pd.DataFrame({"face_id": list("abcd"), "resized_path": [str(tmp_path / n) for n in
                                                           ("ok.png", "big.png", "junk.png", "gone.png")]}
                 ).to_parquet(tmp_path / "metadata.parquet")
    report = write_stage_shards(tmp_path / "metadata.parquet", tmp_path / "splits.parquet", tmp_path / "shards",
                                ShardsConfig(enabled=True), 0, SIZE, tmp_path / "m.json")
    assert report["written"] == 1 and report["rejected"] == {
        "missing_file": 1, "undecodable": 1, f"not_{SIZE}px_rgb": 1}
    off = write_stage_shards(tmp_path / "metadata.parquet", tmp_path / "splits.parquet", tmp_path / "off",
                             ShardsConfig(), 0, SIZE, tmp_path / "m.json")
    assert off["enabled"] is False and [p.name for p in (tmp_path / "off").iterdir()] == [INDEX_NAME]
    with pytest.raises(UserError, match="sample.shards.enabled=true"):
        read_index(str(tmp_path / "off"))
    for bad in ({"max_count": 0}, {"enabled": "yes"}, {"max_bytes": 1.5}, {"maxcount": 3}):
        with pytest.raises(UserError, match="sample.shards"):
            load_section(SampleConfig, {"sample": {"shards": bad}}, "sample")


# ---------------------------------------------------------------- streaming


@pytest.mark.parametrize("sampler", ["shuffle", "source_balanced"])
def test_shards_deliver_the_packed_epoch(staged, sampler):
    cfg = TrainConfig(batch_size=16, sampler=sampler, input="shards", shards=shard_input(staged))
    packed = load_split(staged / "data" / "packed", "train", SIZE)
    shards = load_shard_split(cfg.shards, "train", SIZE)
    assert len(shards) == len(packed) and shards.counts() == packed.counts()
    sizes_packed, seen_packed = epoch_images(packed, cfg, seed=3)
    sizes_shards, seen_shards = epoch_images(shards, cfg, seed=3)
    # the same number of batches of the same sizes, and the very same images (with replacement counts)
    assert sorted(sizes_shards) == sorted(sizes_packed) and sum(sizes_shards) == len(packed)
    assert seen_shards == seen_packed
    if sampler == "shuffle":
        assert set(seen_shards.values()) == {1}
    else:
        assert max(seen_shards.values()) > 1  # drawn with replacement: the same multinomial draw as packed


def test_npy_encoding_streams_the_same_pixels(staged, tmp_path):
    os.chdir(staged)
    try:
        report = write_stage_shards(Path("data/metadata.parquet"), Path("data/splits.parquet"), tmp_path / "npy",
                                    ShardsConfig(enabled=True, encoding="npy"), 0, SIZE, tmp_path / "m.json")
    finally:
        os.chdir(REPO)
    with tarfile.open(tmp_path / "npy" / "shard-000000.tar") as tar:
        assert {Path(n).suffix for n in tar.getnames()} == {".npy", ".json"}
    assert report["written"] == report["in"]
    cfg = TrainConfig(batch_size=16, input="shards", shards=ShardInputConfig(location=str(tmp_path / "npy")))
    packed = load_split(staged / "data" / "packed", "val", SIZE)
    streamed = [h for images, _ in load_shard_split(cfg.shards, "val", SIZE).eval_batches(64) for h in digest(images)]
    assert sorted(streamed) == sorted(digest(torch.from_numpy(np.asarray(packed.images[packed.rows]))))
    with pytest.raises(UserError, match="encoding"):
        load_section(SampleConfig, {"sample": {"shards": {"encoding": "jpeg"}}}, "sample")


def test_stream_order_is_seeded_and_shuffled_across_shards(staged):
    cfg = TrainConfig(batch_size=16, input="shards", shards=shard_input(staged))
    split = load_shard_split(cfg.shards, "train", SIZE)

    def order(seed: int, workers: int = 2) -> list[str]:
        split.cfg = shard_input(staged, workers=workers)
        return [h for images, _ in train_batches(split, cfg, torch.Generator().manual_seed(seed))
                for h in digest(images)]

    a, b, c = order(0), order(0), order(1)
    assert a == b and a != c and sorted(a) == sorted(c)
    in_manifest = [h for images, _ in split.eval_batches(256) for h in digest(images)]
    assert a != in_manifest  # shuffled, not the manifest order
    assert sorted(order(0, workers=0)) == sorted(a)  # in-process reading delivers the same images


@pytest.mark.slow
def test_training_from_shards_matches_packed_quality(staged, tmp_path):
    from test_train import TINY

    common = {"epochs": 4, "batch_size": 16, "lr": 3e-3, "warmup_epochs": 0.5, "min_epochs": 4, "threads": 1}
    runs = {}
    for name in ("packed", "shards"):
        cfg = TrainConfig(**common, input=name, shards=shard_input(staged))
        runs[name] = train(TrainRun(TINY, cfg, SIZE), staged / "data" / "packed", tmp_path / f"{name}.pt",
                           tmp_path / name)
    packed, shards = runs["packed"], runs["shards"]
    assert shards["input"] == "shards" and shards["data"]["train"]["shards"] >= 1
    assert shards["train_images"] == packed["train_images"] == 4 * packed["data"]["train"]["kept"]
    assert {k: shards["data"]["train"][k] for k in ("kept", "real", "fake")} == {
        k: packed["data"]["train"][k] for k in ("kept", "real", "fake")}
    # the same images and the same recipe: the fit of the train split is alike (the val split is too small to rank)
    assert abs(shards["history"][-1]["train_loss"] - packed["history"][-1]["train_loss"]) < 0.1


CONTEXT = 48  # a context view at another side than the aligned SIZE: the shards must take the view's


def fake_context_crops(root: Path, metadata: pd.DataFrame) -> int:
    """A crops stage's output for `metadata`: a context PNG per face (its aligned image, flipped and upsized) and
    every seventh face rejected for padding; returns how many were rejected."""
    rejected = 0
    for source, faces in metadata.groupby("source"):
        rows = []
        for i, face in enumerate(faces.itertuples()):
            row = {"face_id": face.face_id, "source": source, "context_status": "kept", "context_reason": None,
                   "context_path": f"context/{face.face_id}.png"}
            if i % 7 == 3:
                row.update(context_status="rejected", context_reason="pad", context_path=None)
                rejected += 1
            else:
                img = Image.open(root / face.resized_path).transpose(Image.FLIP_LEFT_RIGHT).resize((CONTEXT, CONTEXT))
                (root / "data/crops" / source / "context").mkdir(parents=True, exist_ok=True)
                img.save(root / "data/crops" / source / row["context_path"])
            rows.append(row)
        pd.DataFrame(rows).to_parquet(root / "data/crops" / f"{source}.parquet")
    return rejected


def test_shards_of_the_context_view_hold_its_packed_pixels_and_training_records_the_view(tmp_path, monkeypatch):
    from test_train import TINY

    from realfake.detector.checkpoint import read_checkpoint

    monkeypatch.chdir(tmp_path)
    metadata = embedded_sample_metadata(tmp_path)
    metadata.to_parquet("data/metadata.parquet")
    pad = fake_context_crops(tmp_path, metadata)
    view = {"name": "context", "size": CONTEXT, "context": {"margin": 2.2, "size": CONTEXT}}
    cfg = dataclasses.replace(SAMPLE_CFG, view="context")
    run_sample(Path("data/metadata.parquet"), cfg, SIZE, Path("data/packed"), Path("data/splits.parquet"),
               Path("metrics/sample.json"), Path("plots/sample"), view=view)
    report = write_stage_shards(Path("data/metadata.parquet"), Path("data/splits.parquet"), Path("data/shards"),
                                ShardsConfig(enabled=True, max_count=40), 0, SIZE, Path("reports/shards.json"),
                                view=view)
    assert report["in"] == len(metadata) and report["written"] == len(metadata) - pad
    assert report["rejected"] == {"pad": pad}
    index = pd.read_parquet("data/shards/index.parquet")
    assert set(index["px"]) == {CONTEXT}
    for split in ("train", "val", "test", "holdout"):
        packed = load_split(Path("data/packed"), split, CONTEXT)
        rows = index[index["split"] == split].set_index("face_id")
        assert sorted(rows.index) == sorted(packed.meta["face_id"])  # the same faces as the packed arrays
        members = read_members(Path("data/shards"), rows.loc[packed.meta["face_id"]])
        for i, face_id in enumerate(packed.meta["face_id"]):
            assert np.array_equal(members[face_id], packed.images[packed.rows[i]]), face_id
    train_cfg = TrainConfig(epochs=1, batch_size=16, min_epochs=1, threads=1, input="shards",
                            shards=shard_input(tmp_path))
    train(TrainRun(TINY, train_cfg, CONTEXT), Path("data/packed"), tmp_path / "m.pt", tmp_path / "live")
    assert read_checkpoint(tmp_path / "m.pt")["preprocessing"]["view"] == view


def test_missing_shards_and_keys_are_one_clear_error(staged, tmp_path):
    import shutil

    copy = tmp_path / "shards"
    shutil.copytree(staged / "data" / "shards", copy)
    index = pd.read_parquet(copy / INDEX_NAME)
    cfg = TrainConfig(batch_size=16, input="shards", shards=ShardInputConfig(location=str(copy), workers=2))
    lost = index.loc[index["split"] == "train", "shard"].iloc[0]
    (copy / lost).unlink()
    with pytest.raises(UserError, match="reading the train shards") as err:
        list(train_batches(load_shard_split(cfg.shards, "train", SIZE), cfg, torch.Generator().manual_seed(0)))
    assert "\n" not in str(err.value)
    shutil.copy2(staged / "data" / "shards" / lost, copy / lost)
    bogus = index.copy()
    bogus.loc[bogus["split"] == "val", "key"] = [str(10**6 + i) for i in range((bogus["split"] == "val").sum())]
    write_index(bogus, tmp_path / "bogus.parquet")
    split = load_shard_split(ShardInputConfig(location=str(copy), index=str(tmp_path / "bogus.parquet")), "val", SIZE)
    with pytest.raises(UserError, match="not delivered by the shards"):
        list(split.eval_batches(64))
    with pytest.raises(UserError, match="resize.size is 64"):
        load_shard_split(cfg.shards, "train", 64)


# ---------------------------------------------------------------- re-sampling by index


def test_resample_is_a_new_manifest_over_untouched_shards(staged, tmp_path):
    folder = staged / "data" / "shards"
    before = file_states(folder)
    index = read_index(str(folder))
    metadata = pd.read_parquet(staged / "data" / "metadata.parquet")
    cfg = SampleConfig(**{**SAMPLE_CFG.__dict__, "seed": 1})
    new = resample_index(index, metadata, cfg)
    write_index(new, tmp_path / "seed1.parquet")
    assert file_states(folder) == before  # zero tar writes: every shard (and the old index) byte- and time-equal
    assert new[["shard", "key", "face_id"]].equals(index[["shard", "key", "face_id"]])
    assert (new["split"].fillna("") != index["split"].fillna("")).sum() > 10  # a different draw
    # the same draw the sample stage makes from scratch with that seed
    from realfake.sample.stage import split_table

    direct, _ = split_table(metadata, cfg)
    assert dict(zip(new["face_id"], new["split"].fillna("none"), strict=True)) == dict(
        zip(direct["face_id"], direct["split"].fillna("none"), strict=True))
    split = load_shard_split(ShardInputConfig(location=str(folder), index=str(tmp_path / "seed1.parquet"),
                                              workers=2), "train", SIZE)
    delivered = sorted(split.meta["face_id"].iloc[p] for _, positions in split.eval_batches(64) for p in positions)
    assert delivered == sorted(new.loc[new["split"] == "train", "face_id"])


@pytest.mark.slow  # the realfake CLI in a subprocess (~3 s here)
def test_resample_command(staged, tmp_path):
    import yaml

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"sample": {"strata": ["gender"], "min_per_stratum": 2, "seed": 0,
                                                 "holdout_sources": ["utkface"], "shards": {"enabled": True}}}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "realfake.cli", "resample", "--params", str(params), *args],
                              cwd=staged, env=env, capture_output=True, text=True, timeout=120)

    done = cli("--seed", "2", "--out", str(tmp_path / "seed2.parquet"))
    assert done.returncode == 0, done.stderr
    assert "no image rewritten" in done.stderr and len(pd.read_parquet(tmp_path / "seed2.parquet")) > 0
    missing = cli("--metadata", "nope.parquet", "--out", str(tmp_path / "x.parquet"))
    assert missing.returncode == 2 and "metadata stage" in missing.stderr and "Traceback" not in missing.stderr
    empty = cli("--shards", str(tmp_path), "--out", str(tmp_path / "x.parquet"))
    assert empty.returncode == 2 and "sample.shards.enabled" in empty.stderr and not (tmp_path / "x.parquet").exists()


# ---------------------------------------------------------------- object store


@pytest.mark.slow
def test_streaming_from_s3_matches_local(staged, s3, monkeypatch):
    # s3: the local SeaweedFS server of tests/s3_server.py (skips cleanly without the weed binary)
    folder = staged / "data" / "shards"
    for path in sorted(folder.iterdir()):
        s3.put(f"shards/{path.name}", path.read_bytes())
    remote = ShardInputConfig(location=s3.uri("shards"), shuffle_buffer=50, workers=2)
    local = shard_input(staged)
    for name in ("train", "val"):
        a, b = load_shard_split(remote, name, SIZE), load_shard_split(local, name, SIZE)
        assert a.meta.equals(b.meta)
        remote_images = [h for images, _ in a.eval_batches(64) for h in digest(images)]
        assert sorted(remote_images) == sorted(h for images, _ in b.eval_batches(64) for h in digest(images))
    cfg = TrainConfig(batch_size=16, input="shards", shards=remote)
    _, seen_remote = epoch_images(load_shard_split(remote, "train", SIZE), cfg, seed=1)
    _, seen_local = epoch_images(load_shard_split(local, "train", SIZE), cfg, seed=1)
    assert seen_remote == seen_local
    from realfake.core.view_record import read_view_record

    assert read_view_record(remote.location) is None  # aligned shards carry no record
    s3.put("shards/view.json", b'{"name": "context", "size": 48}')
    assert read_view_record(remote.location) == {"name": "context", "size": 48}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(UserError, match="cannot read the shard manifest") as err:
        load_shard_split(ShardInputConfig(location=s3.uri("shards")), "train", SIZE)
    assert "\n" not in str(err.value)
