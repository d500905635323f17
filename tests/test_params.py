"""One config loader for every params.yaml section: unknown keys and wrong types are one clear line (exit 2)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml
from conftest import assert_user_error, run_script

from realfake.attributes.config import AttributesConfig
from realfake.core.engine import ComputeConfig
from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.core.training_image import ResizeConfig, image_size
from realfake.crops.views import CropsConfig
from realfake.cv import CVConfig
from realfake.dedupe.config import DedupeConfig
from realfake.detector.model import ModelConfig
from realfake.detector.train_config import TrainConfig, load_train_config
from realfake.evaluation.evaluate import EvaluateConfig
from realfake.faces.config import FacesConfig
from realfake.ingest.download import DownloadConfig
from realfake.ingest.sources import DataConfig, load_source
from realfake.metadata.build import MetadataConfig
from realfake.sample.config import SampleConfig

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
# Every section of params.yaml and the dataclass that reads it (`sources` is the registry: realfake.ingest.sources).
SECTIONS = {
    "data": DataConfig, "download": DownloadConfig, "faces": FacesConfig, "resize": ResizeConfig,
    "dedupe": DedupeConfig, "attributes": AttributesConfig, "metadata": MetadataConfig, "sample": SampleConfig,
    "cv": CVConfig, "model": ModelConfig, "train": TrainConfig, "evaluate": EvaluateConfig,
    "compute": ComputeConfig, "crops": CropsConfig,
}


def section_of(name: str) -> dict:
    """A params.yaml section as its dataclass reads it (`train.profile_overrides` is applied before, not a field)."""
    return {k: v for k, v in PARAMS[name].items() if not (name == "train" and k == "profile_overrides")}


def load(name: str, params: dict):
    """Read section `name` of `params` as its stage does (train through load_train_config: profile overrides)."""
    return load_train_config(params)[0] if name == "train" else load_section(SECTIONS[name], params, name)


def params_with(path: str, value) -> dict:
    """A copy of params.yaml with the dotted key `path` set to `value`."""
    params = copy.deepcopy(PARAMS)
    *parents, leaf = path.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    return params


def plain(value):
    """A config value as YAML would spell it: dataclasses as mappings of their params, tuples as lists."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def test_every_section_has_a_config_and_params_yaml_loads():
    assert set(PARAMS) == set(SECTIONS) | {"sources"}, "a new params.yaml section needs its dataclass here"
    for name, cls in SECTIONS.items():
        assert isinstance(load_section(cls, {name: section_of(name)}, name), cls)
    assert isinstance(load_train_config(PARAMS)[0], TrainConfig)
    for name in PARAMS["sources"]:
        load_source(PARAMS, name)


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_dataclass_defaults_are_params_yaml(name):
    """Defaults live in params.yaml; a code default may only repeat it (ResizeConfig.reencode once drifted)."""
    default, configured = plain(SECTIONS[name]()), section_of(name)
    assert default == configured, f"{name}: dataclass defaults differ from params.yaml"


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_a_misspelt_key_names_itself_and_the_known_ones(name):
    key = next(iter(PARAMS[name]))
    typo = key[:-1] + key[-1] * 2  # e.g. "size" -> "sizee"
    with pytest.raises(UserError) as err:
        load(name, params_with(f"{name}.{typo}", PARAMS[name][key]))
    message = str(err.value)
    assert f"{name}: unknown key {typo!r} (did you mean {key!r}?)" in message and "\n" not in message
    assert all(known in message for known in section_of(name))


@pytest.mark.parametrize("path", ["train.augment.jpeg_pp", "train.patch.sise", "evaluate.spectral.c",
                                  "evaluate.honest_pair.reel", "sample.fractions.vall", "download.limits.max_file",
                                  "dedupe.calibration.negative"])
def test_a_misspelt_key_in_a_nested_section_names_its_full_path(path):
    section = path.split(".")[0]
    *parent, typo = path.split(".")
    with pytest.raises(UserError, match=rf"^{'.'.join(parent)}: unknown key {typo!r}"):
        load(section, params_with(path, 1))


def test_a_misspelt_key_of_a_source_or_profile_is_a_user_error():
    with pytest.raises(UserError, match=r"sources.lfw: unknown key 'lable'"):
        load_source(params_with("sources.lfw.lable", "real"), "lfw")
    with pytest.raises(UserError, match=r"data.profile='mirrror' is not one of"):
        load_source(params_with("data.profile", "mirrror"), "lfw")


@pytest.mark.parametrize("path,value,message", [
    ("model.attention", "maybe", "model.attention must be true or false, got 'maybe'"),
    ("dedupe.match_flips", 1, "dedupe.match_flips must be true or false, got 1"),
    ("train.epochs", "30", "train.epochs must be an integer, got '30'"),
    ("train.epochs", 30.0, "train.epochs must be an integer, got 30.0"),
    ("train.eval_batch_size", True, "train.eval_batch_size must be an integer, got True"),
    ("train.lr", "fast", "train.lr must be a number, got 'fast'"),
    ("train.schedule", "linear", "train.schedule must be one of cosine, onecycle, none, got 'linear'"),
    ("train.focal_alpha", "half", "train.focal_alpha must be a number or null, got 'half'"),
    ("train.augment.crop_scale", 0.8, "train.augment.crop_scale must be a list of numbers, got 0.8"),
    ("train.patch", [16], "train.patch must be a mapping of keys to values, got [16]"),
    ("sample.strata", "gender", "sample.strata must be a list of strings, got 'gender'"),
    ("evaluate.robustness", ["jpeg:75", 50], "evaluate.robustness must be a list of strings"),
    ("evaluate.audit.model", "forest", "evaluate.audit.model must be one of logistic, gbm, got 'forest'"),
    ("faces.primary", "leftmost", "faces.primary must be one of center, largest, prob, got 'leftmost'"),
    ("resize.reencode", "webp", "resize.reencode must be one of none, jpeg, got 'webp'"),
    ("data.profiles", "sample", "data.profiles must be a list of strings, got 'sample'"),
])
def test_values_are_validated_not_coerced(path, value, message):
    section = path.split(".")[0]
    with pytest.raises(UserError) as err:
        load(section, params_with(path, value))
    assert message in str(err.value)


def test_values_keep_their_meaning():
    train = load("train", params_with("train.lr", 1))
    assert train.lr == 1 and train.augment.crop_scale == [0.5, 1.0] and train.patch.size is None  # an int is a number
    sample = load_section(SampleConfig, PARAMS, "sample")
    assert sample.holdout_sources == ("ciplab-real",) and dataclasses.astuple(sample.fractions) == (0.70, 0.15, 0.15)
    assert load_section(EvaluateConfig, PARAMS, "evaluate").audit.margin == 0.03
    assert load_section(ModelConfig, {}, "model") == ModelConfig()  # a missing section: all defaults


def test_resize_size_is_read_in_one_place():
    assert image_size(PARAMS) == PARAMS["resize"]["size"]
    assert image_size({"resize": {}}) == ResizeConfig().size == PARAMS["resize"]["size"]
    for bad, message in ((params_with("resize.size", "64"), "resize.size must be an integer, got '64'"),
                         (params_with("resize.size", 4), "resize.size must be an integer in 8..1024, got 4")):
        with pytest.raises(UserError, match=message):
            image_size(bad)
    stages = "\n".join(p.read_text() for p in sorted((REPO / "stages").glob("*.py")))
    assert '["size"]' not in stages and "['size']" not in stages


# ---------------------------------------------------------------- through the real stage scripts


@pytest.mark.parametrize("script,path,value,message", [
    (("resize.py", "--source", "lfw"), "resize.sise", 64, "resize: unknown key 'sise' (did you mean 'size'?)"),
    pytest.param(("train.py",), "model.attention", "maybe", "model.attention must be true or false, got 'maybe'",
                 marks=pytest.mark.slow),  # torch's import alone takes seconds
    (("sample.py",), "sample.seed", "zero", "sample.seed must be an integer, got 'zero'"),
    pytest.param(("evaluate.py",), "evaluate.spectral.maxiter", 10, "evaluate.spectral: unknown key 'maxiter'",
                 marks=pytest.mark.slow),
    pytest.param(("download.py", "--source", "lfw"), "download.retires", 3, "download: unknown key 'retires'",
                 marks=pytest.mark.slow),
])
def test_stage_scripts_answer_bad_params_with_one_line_and_exit_2(tmp_path, script, path, value, message):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_with(path, value)))
    assert_user_error(run_script(tmp_path, *script), message)


@pytest.mark.parametrize("typo,section", [("face", "faces"), ("trian", "train"), ("sampel", "sample")])
def test_a_misspelt_section_is_refused_not_run_on_defaults(typo, section):
    """`face:` for `faces:` ran the stage on defaults, the user's settings silently ignored (issue 25, 7)."""
    params = {k: v for k, v in PARAMS.items() if k != section} | {typo: PARAMS[section]}
    with pytest.raises(UserError, match=f"params section `{section}` is missing but `{typo}` is there"):
        load(section, params)


def test_a_stage_script_with_a_misspelt_section_fails_in_one_line(tmp_path):
    params = {("face" if k == "faces" else k): v for k, v in PARAMS.items()}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert_user_error(run_script(tmp_path, "faces.py", "--source", "lfw"),
                      "params section `faces` is missing but `face` is there")


# ---------------------------------------------------------------- one reader for overrides and for `sources:`


def test_load_params_applies_overrides_as_cv_set_does(tmp_path):
    """`realfake cv --set` and load_params share one override rule (values parsed as YAML, as dvc exp run -S)."""
    import realfake.cv
    from realfake.core.params import apply_overrides, load_params

    assert realfake.cv.apply_overrides is apply_overrides
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 9}, "model": {"attention": True}}))
    params = load_params(path, ["train.epochs=3", "model.attention=false", "model.width=[1, 2]"])
    assert params == {"train": {"epochs": 3}, "model": {"attention": False, "width": [1, 2]}}
    assert load_params(path) == {"train": {"epochs": 9}, "model": {"attention": True}}
    with pytest.raises(UserError, match="no section 'nothing'"):
        load_params(path, ["nothing.here=1"])


def test_source_names_and_declared_watermarks_are_read_and_checked_in_one_place():
    from realfake.core.sources import declared_watermarks, source_names, source_watermark

    assert source_names(PARAMS) == sorted(PARAMS["sources"])
    marks = declared_watermarks(PARAMS)
    assert marks["pollinations"].box == (0.68, 0.93, 1.0, 1.0)
    assert set(marks) == {n for n, s in PARAMS["sources"].items() if (s or {}).get("watermark") is not None}
    with pytest.raises(UserError, match=r"sources.pollinations.watermark: unknown key 'bx'"):
        source_watermark(params_with("sources.pollinations.watermark", {"bx": [0, 0, 1, 1]}), "pollinations")
    with pytest.raises(UserError, match="watermark.box must be"):
        source_watermark(params_with("sources.pollinations.watermark", {"box": [0.9, 0, 0.1, 1]}), "pollinations")
    with pytest.raises(UserError, match="unknown source 'nope'"):
        source_watermark(PARAMS, "nope")


def test_no_stage_script_digs_in_raw_params():
    """Stage scripts read params through the loaders (load_section, realfake.core.sources), never params[...]/.get."""
    import ast

    found = []
    for path in sorted((REPO / "stages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            raw = (isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "params") or (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and getattr(node.func.value, "id", None) == "params")
            if raw:
                found.append(f"{path.name}:{node.lineno}")
    # stages/train.py is being rewritten (now, elsewhere) around one TrainRun built from params: its reads go then
    assert [f for f in found if not f.startswith("train.py:")] == [], found
