"""Clean presets: YAML files in ``configs/`` loaded into frozen dataclasses; CLI flags override them.

A preset is named (``default``, ``dashcam``: the shipped files) or given as a path. Every preset
is layered on ``default.yaml``, so it only states what it changes. Unknown keys are errors that
list the valid ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .stages.encode import EncodeSettings
from .stages.model_contract import KINDS
from .stages.schedule import ScheduleConfig
from .stages.smooth import SmoothingConfig
from .stages.stationary import StationaryConfig


@dataclass(frozen=True)
class CleanConfig:
    """Everything ``vstream clean`` needs besides the input and output paths.

    ``model``: a path, or None for the shipped model of ``kind``. ``max_side``: the longest side
    of the smallest pyramid level, which is all the network sees. ``workers``: Ray actors
    (0 = in-process, no Ray; None = chosen from the cores). ``batch``: frames per Ray call.
    ``max_in_flight``: frames submitted and not yet encoded (None = two batches per worker).
    ``residual_floor``: corrections smaller than this (0..1) are dropped as network noise
    (:func:`vstream.stages.reconstruct.removal`). ``schedule``: which frames the network runs on
    (:mod:`vstream.stages.schedule`). ``stationary``: the layer that stays put on glass moving
    with the camera (:mod:`vstream.stages.stationary`).
    """

    kind: str = "reflection"
    model: str | None = None
    max_side: int = 320
    strength: float = 1.0
    residual_floor: float = 0.0
    device: str = "cpu"
    workers: int | None = None
    threads_per_worker: int = 1
    batch: int = 4
    max_in_flight: int | None = None
    temporal: SmoothingConfig = field(default_factory=SmoothingConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    stationary: StationaryConfig = field(default_factory=StationaryConfig)
    encode: EncodeSettings = field(default_factory=EncodeSettings)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"strength must be in [0, 1], got {self.strength}")
        if not 0.0 <= self.residual_floor < 0.5:
            raise ConfigError(f"residual_floor must be in [0, 0.5), got {self.residual_floor}")
        if self.max_side < 32:
            raise ConfigError(f"max_side must be at least 32, got {self.max_side}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"workers must be 0 or more, got {self.workers}")
        if self.batch < 1:
            raise ConfigError(f"batch must be at least 1, got {self.batch}")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be at least 1, got {self.max_in_flight}")

    def model_path(self) -> Path:
        """The ONNX file to load: ``model`` if set, else the shipped ``models/<kind>.onnx``."""
        if self.model is not None:
            return Path(self.model)
        return shipped_folder("models") / f"{self.kind}.onnx"


def shipped_folder(name: str) -> Path:
    """``models/`` or ``configs/``: installed as the package ``vstream.<name>``, or, when vstream
    runs straight from a source checkout (``python -m vstream`` in the repo), the top-level
    folder the package is built from."""
    try:
        return Path(str(resources.files(f"vstream.{name}")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / name


def preset_path(name: str) -> Path:
    """``name`` as a file path if it is one, else the shipped ``configs/<name>.yaml``."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    shipped = shipped_folder("configs") / f"{name}.yaml"
    if not shipped.is_file():
        raise ConfigError(f"no preset named {name!r}; available: {', '.join(shipped_presets())}")
    return shipped


def shipped_presets() -> list[str]:
    """The names ``-c`` takes besides a file: ``configs/*.yaml``."""
    return sorted(p.stem for p in shipped_folder("configs").glob("*.yaml"))


def load_config(preset: str = "default", overrides: dict[str, Any] | None = None) -> CleanConfig:
    """Load ``default.yaml``, then ``preset`` over it, then ``overrides`` (dotted keys allowed)."""
    values: dict[str, Any] = {}
    for path in dict.fromkeys([preset_path("default"), preset_path(preset)]):
        _merge(values, _read_yaml(path))
    for key, value in (overrides or {}).items():
        if value is not None:
            _merge(values, _unflatten(key, value))
    try:
        return _build(CleanConfig, values, "")
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read config {path}{_yaml_reason(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys to values")
    return data


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """``, line 3, column 7: <problem> (<context> at line 1, column 4)``, PyYAML's 0-based marks made 1-based."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f": {str(exc).splitlines()[0]}"
    mark = exc.problem_mark
    reason = f", line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    if exc.context:
        where = exc.context_mark
        reason += f" ({exc.context}" + (f" at line {where.line + 1}, column {where.column + 1})" if where else ")")
    return reason


def _unflatten(key: str, value: Any) -> dict[str, Any]:
    head, _, rest = key.partition(".")
    return {head: _unflatten(rest, value) if rest else value}


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values``, recursing into dataclass-typed fields; every
    other value is checked against its field's type (:func:`_checked`)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; valid keys: {', '.join(prefix + k for k in fields)}"
        )
    kwargs = {}
    for name, value in values.items():
        default = fields[name].default_factory if fields[name].default_factory is not dataclasses.MISSING else None
        if default is not None and dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {prefix}{name} must be a mapping")
            value = _build(default, value, f"{prefix}{name}.")
        else:
            value = _checked(f"{prefix}{name}", value, hints[name])
        kwargs[name] = value
    return cls(**kwargs)


def _checked(key: str, value: Any, hint: Any) -> Any:
    """``value`` as config key ``key`` of type ``hint`` takes it, else a :class:`ConfigError` naming the key.

    ``hint`` is ``str``, ``int``, ``float``, ``bool``, ``dict[str, str]`` (encoder options: text or
    numbers, as FFmpeg reads them), or one of those or None. A whole number is taken as text
    (``bitrate: 4000000``) and as a number (``strength: 1``); a bool is neither, and only a bool is a bool.
    """
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    wanted = next(option for option in options if option is not type(None))
    if typing.get_origin(wanted) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key} must be a mapping, got {value!r}")
        for name, item in value.items():
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise ConfigError(f"config key {key}.{name} must be text or a number, got {item!r}")
        return {str(name): item for name, item in value.items()}
    if wanted is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, _ACCEPTED[wanted]):
        raise ConfigError(f"config key {key} must be {_DESCRIBED[wanted]}, got {value!r}")
    return str(value) if wanted is str else value


_ACCEPTED = {str: (str, int), int: int, float: (int, float)}
_DESCRIBED = {str: "text", int: "a whole number", float: "a number"}
