"""Typed configuration: frozen dataclasses loaded from YAML or dicts, unknown keys rejected.

Each setting is declared once, as a dataclass field made by `setting(default, help=..., low=...,
high=..., choices=...)` (choices also come from a `Literal` type). Everything else is derived
from that declaration: the checks every config runs at construction (`check_settings`, called
from `__post_init__`, so YAML, ROS parameters and code are checked alike), the ROS parameter
descriptors (`ami_robot.ros.params`) and command-line choices (`choices_of`). Every float setting
must be finite.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ami_robot.errors import ConfigError

T = TypeVar("T")

_SETTING = "ami_robot.setting"


@dataclass(frozen=True)
class Setting:
    """What one setting means and which values it takes.

    help: one line for users (units included). low/high: bounds of a number, or of every number in
    a tuple; `low_open`/`high_open` exclude the bound itself. choices: the allowed values.
    """

    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()

    def check(self, value: Any, where: str) -> None:
        """Raise ConfigError unless `value` (a number, a tuple of numbers, a choice or None) is allowed."""
        if value is None:
            return
        if self.choices and value not in self.choices:
            raise ConfigError(f"{where} must be one of {list(self.choices)}, got {value!r}")
        for number in _numbers(value):
            if not math.isfinite(number):
                raise ConfigError(f"{where} must be finite, got {value!r}")
            too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
            too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
            if too_low or too_high:
                raise ConfigError(f"{where} must be {self.range_text()}, got {value!r}")

    def range_text(self) -> str:
        """The allowed range in words, e.g. "in [0, 1)" or "> 0"."""
        if self.low is not None and self.high is not None:
            low, high = _bound_text(self.low), _bound_text(self.high)
            return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_bound_text(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {_bound_text(self.high)}"
        return "finite"


def _bound_text(bound: float) -> str:
    """An integer bound exactly (2147483647, not 2.14748e+09), a float one short."""
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple[Any, ...] = (),
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field declaring a setting: its default, meaning and allowed values (see `Setting`)."""
    metadata = {_SETTING: Setting(help, low, high, low_open, high_open, tuple(choices))}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_DECLARED: dict[type, dict[str, Setting]] = {}


def declared_settings(cls: type) -> dict[str, Setting]:
    """The `Setting` of each field of dataclass `cls` (fields made without `setting()` get an empty
    help), with the choices of `Literal` types filled in."""
    if cls not in _DECLARED:
        _DECLARED[cls] = _declare(cls)
    return _DECLARED[cls]


def _declare(cls: type) -> dict[str, Setting]:
    hints = typing.get_type_hints(cls)
    declared = {}
    for f in dataclasses.fields(cls):
        declared_setting = f.metadata.get(_SETTING, Setting(help=""))
        literal = _literal_choices(hints[f.name])
        if literal and not declared_setting.choices:
            declared_setting = dataclasses.replace(declared_setting, choices=literal)
        declared[f.name] = declared_setting
    return declared


def choices_of(cls: type, name: str) -> tuple[Any, ...]:
    """The allowed values of setting `name` of dataclass `cls` (for command-line choices)."""
    return declared_settings(cls)[name].choices


def help_of(cls: type, name: str) -> str:
    """The help text of setting `name` of dataclass `cls` (for command-line help)."""
    return declared_settings(cls)[name].help


def check_settings(config: Any) -> None:
    """Check every field of dataclass instance `config` against its declaration; every number must
    be finite. Call it first in `__post_init__`; raises ConfigError naming the field."""
    cls = type(config)
    for name, declared_setting in declared_settings(cls).items():
        value = getattr(config, name)
        if dataclasses.is_dataclass(value):
            continue
        declared_setting.check(value, f"{cls.__name__}.{name}")


def iter_settings(cls: type, prefix: str = "") -> Iterator[tuple[str, Setting]]:
    """(dotted name, Setting) of every setting of dataclass `cls`, nested dataclasses flattened."""
    hints = typing.get_type_hints(cls)
    for name, declared_setting in declared_settings(cls).items():
        if dataclasses.is_dataclass(hints[name]):
            yield from iter_settings(hints[name], f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", declared_setting


def _literal_choices(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(c for arg in typing.get_args(annotation) for c in _literal_choices(arg))
    return ()


def _numbers(value: Any) -> list[float]:
    """The numbers in a number or a tuple/list of numbers (booleans and strings hold none)."""
    items = value if isinstance(value, (tuple, list)) else (value,)
    return [float(v) for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} matches none of {annotation}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {k: _coerce(v, args[1] if args else Any, f"{where}.{k}") for k, v in value.items()}
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if annotation is Path:
        return Path(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str | None = None) -> T:
    """Build dataclass `cls` from `data`, checking key names and value types."""
    where = where or cls.__name__
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known keys are {sorted(fields)}")
    kwargs = {name: _coerce(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def read_yaml(path: str | Path) -> Any:
    """The document in a YAML file (None when empty); ConfigError when it cannot be read or parsed."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def load_yaml(cls: type[T], path: str | Path, section: str | None = None) -> T:
    """Load dataclass `cls` from a YAML file, optionally from one top-level `section`."""
    data = read_yaml(path) or {}
    if section is not None:
        if section not in data:
            raise ConfigError(f"{path}: no section {section!r}")
        data = data[section]
    return from_dict(cls, data, where=f"{path}" + (f":{section}" if section else ""))


def to_dict(config: Any) -> dict[str, Any]:
    """A YAML/JSON-ready dict of a dataclass (tuples become lists, paths strings)."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(dataclasses.asdict(config))
