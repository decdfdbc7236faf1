from __future__ import annotations

from pathlib import Path

import pytest

from vstream.config import load_config
from vstream.errors import ConfigError
from vstream.stages.infer import InterferenceModel
from vstream.stages.model_contract import KINDS


def test_presets_layer_on_default():
    default, dashcam = load_config("default"), load_config("dashcam")
    assert default.encode.codec == dashcam.encode.codec == "libx264"
    assert dashcam.temporal.alpha != default.temporal.alpha
    assert dashcam.max_side == default.max_side


def test_flags_override_the_preset():
    config = load_config("dashcam", {"encode.crf": 30, "workers": 3, "strength": None})
    assert config.encode.crf == 30 and config.workers == 3
    assert config.strength == load_config("dashcam").strength


def test_yaml_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("max_side: 256\ntemporal:\n  alpha: 0.5\n")
    config = load_config(str(path))
    assert config.max_side == 256 and config.temporal.alpha == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour: red\n", "unknown config key 'colour'; valid keys: kind"),
        ("temporal:\n  beta: 1\n", "unknown config key 'temporal.beta'"),
        ("strength: 2\n", "strength must be in"),
        ("residual_floor: -0.1\n", "residual_floor must be in"),
        ("kind: fog\n", "kind must be one of"),
        ("encode:\n  codec: nope\n", "unknown video encoder"),
        ("encode:\n  pix_fmt: nv99\n", "cannot take pix_fmt"),
        ("temporal: 3\n", "must be a mapping"),
        ("schedule:\n  max_gap: 0\n", "schedule.max_gap must be a whole number of 1 or more, got 0"),
        ("schedule:\n  threshold: high\n", "config key schedule.threshold must be a number, got 'high'"),
        ("schedule:\n  every: 2\n", "unknown config key 'schedule.every'; valid keys: schedule.threshold, schedule.max_gap"),
        ("- a\n- b\n", "must be a mapping"),
    ],
)
def test_exception(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("encode:\n  crf: [1, 2\n", "line 3, column 1: expected ',' or ']', but got '<stream end>' "
                                     "(while parsing a flow sequence at line 2, column 8)"),
        ("strength: a: b\n", "line 1, column 12: mapping values are not allowed here"),
    ],
)
def test_exception_yaml_syntax_names_line_column_and_cause(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value) == f"cannot read config {path}, {message}"


def test_exception_unknown_preset():
    with pytest.raises(ConfigError, match="no preset named 'nope'; available: dashcam, default"):
        load_config("nope")


def test_shipped_model_path_follows_kind():
    assert load_config("default", {"kind": "shadow"}).model_path().name == "shadow.onnx"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_preset_and_a_shipped_model(kind):
    config = load_config("default" if kind == "reflection" else kind)
    assert config.kind == kind
    assert InterferenceModel(config.model_path(), threads=1).kind == kind


def test_shipped_folders_found_from_a_source_checkout(monkeypatch):
    """`python -m vstream` inside the repo imports the source tree, where models/ and configs/ are
    top-level folders rather than the installed vstream.models / vstream.configs packages."""
    from vstream import config

    def not_installed(name):
        raise ModuleNotFoundError(name)

    checkout = Path(__file__).resolve().parent.parent
    monkeypatch.setattr(config.resources, "files", not_installed)
    monkeypatch.setattr(config, "__file__", str(checkout / "vstream" / "config.py"))
    assert config.shipped_folder("configs") == checkout / "configs"
    assert (config.shipped_folder("models") / "reflection.onnx").is_file()
    assert load_config("dashcam").temporal.alpha == 0.25
