"""Reading params.yaml (one typed loader for every section) and locating the offline mirror."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from realfake.core.errors import UserError

MIRROR_ENV = "REALFAKE_MIRROR"
T = TypeVar("T")


def load_params(path: str | os.PathLike = "params.yaml", overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Load params.yaml as a dict, with a clear error when it is missing or malformed; then apply `overrides`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: run from the repository root")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(params, dict):
        raise UserError(f"{path} must hold a mapping at the top level")
    return apply_overrides(params, overrides)


def apply_overrides(params: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A copy of params with `dotted.key=value` assignments (values parsed as YAML), as `dvc exp run -S` does.

    The one override rule: `realfake cv --set` and every stage script that takes overrides go through it.
    """
    out = copy.deepcopy(params)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects dotted.key=value, got {item!r}")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise UserError(f"--set {key}: params.yaml has no section {part!r} there")
            node = node[part]
        node[leaf] = yaml.safe_load(raw)
    return out


def load_section(cls: type[T], params: Mapping[str, Any] | None, name: str) -> T:
    """The params section `name` (dotted for a nested one: "train.augment") as the config dataclass `cls`.

    Every value is checked against the field's type hint, not converted: a bool must be true/false, an int an
    integer (a float field takes integers too), a Literal one of its values, a list[T] a list of T (a tuple field
    gets a tuple), a nested dataclass a mapping read by the same rules. Unknown keys name themselves and the
    known ones. Missing keys take the dataclass default, which a test keeps equal to params.yaml. Range checks
    stay with each config (its `__post_init__`, or `validate()`, which is called here). Every mistake is a
    UserError: one line, exit 2.
    """
    section: Any = params
    for part in name.split("."):
        section = section.get(part) if isinstance(section, Mapping) else None
    if section is None and isinstance(params, Mapping):
        refuse_misspelt_section(params, name.split(".")[0])
    return _build(cls, section, name)


def refuse_misspelt_section(params: Mapping[str, Any], top: str) -> None:
    """A missing section means "all defaults", unless a near spelling of it is there (`face:` for `faces:`): then
    the user's settings would be silently ignored, so say so."""
    if top in params:
        return
    near = difflib.get_close_matches(top, [str(k) for k in params], n=1, cutoff=0.75)
    if near:
        raise UserError(f"params section `{top}` is missing but `{near[0]}` is there: a misspelling? Rename it to "
                        f"`{top}` (as it stands its settings would be ignored and `{top}` would run on defaults)")


def _build(cls: type[T], values: Any, where: str) -> T:
    """Instantiate dataclass `cls` from a mapping (None: all defaults), checking keys and types."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise UserError(f"{where} must be a mapping of keys to values, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"{where}: unknown key {key!r}{hint}; known keys: {', '.join(known)}")
    cfg = cls(**{key: _check(hints[key], value, f"{where}.{key}") for key, value in values.items()})
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def _check(hint: Any, value: Any, where: str) -> Any:
    """`value` if it has the type `hint` describes (containers rebuilt as the hint's type), else a UserError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check(arg, value, where)
            except UserError:
                continue
        raise UserError(f"{where} must be {_describe(hint)}, got {value!r}")
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise UserError(f"{where} must be one of {', '.join(map(str, args))}, got {value!r}")
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise UserError(f"{where} must be {_describe(hint)}, got {value!r}")
        fixed = origin is tuple and args and args[-1] is not Ellipsis
        if fixed and len(value) != len(args):
            raise UserError(f"{where} must be {_describe(hint)}, got {value!r}")
        item_hints = args if fixed else [args[0] if args else Any] * len(value)
        try:
            return origin(_check(h, v, f"{where}[{i}]") for i, (h, v) in enumerate(zip(item_hints, value, strict=True)))
        except UserError:
            if any(dataclasses.is_dataclass(h) for h in item_hints):
                raise  # the nested message says which key of which item
            raise UserError(f"{where} must be {_describe(hint)}, got {value!r}") from None
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise UserError(f"{where} must be {_describe(hint)}, got {value!r}")
        key_hint, value_hint = args or (Any, Any)
        return {_check(key_hint, k, where): _check(value_hint, v, f"{where}.{k}") for k, v in value.items()}
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint in (bool, str):
        ok = isinstance(value, hint)
    else:
        raise TypeError(f"{where}: load_section cannot check the type {hint!r}")  # a programming error
    if not ok:
        raise UserError(f"{where} must be {_describe(hint)}, got {value!r}")
    return value


_PLURAL = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


def _describe(hint: Any) -> str:
    """A type hint in words, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None)) + (
            " or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
        return f"a list of {_PLURAL.get(args[0], _describe(args[0]) + ' values')}" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def find_mirror(start: str | os.PathLike | None = None) -> Path | None:
    """Locate the offline mirror: $REALFAKE_MIRROR, else the nearest `shared/mirror` beside an ancestor.

    Walking up matters for `dvc exp run --queue/--temp`, which runs in a copy under `.dvc/tmp/exps/…`
    where `../shared` does not exist but an ancestor's sibling still does.
    """
    env = os.environ.get(MIRROR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = Path(start or os.getcwd()).resolve()
    for ancestor in [here, *here.parents]:
        candidate = ancestor / "shared" / "mirror"
        if candidate.is_dir():
            return candidate
    return None
