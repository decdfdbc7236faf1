from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vstream.cli import main
from vstream.errors import InputOpenError
from vstream.evaluation.evaluate import builtin_methods, evaluate, find_pairs

from media import synthetic_frame


def write(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), rgb[..., ::-1])


@pytest.fixture
def layouts(tmp_path) -> dict[str, Path]:
    folders = {}
    for name, (inp, truth) in {"ceil": ("{}-input.png", "{}-label1.png"), "real": ("{}_input.png", "{}_background.png"),
                               "flash": ("{}_ambient.jpg", "{}_ambient_T.jpg"),
                               "dorm": ("{}_input.jpg", "{}_background.jpg")}.items():
        folder = tmp_path / name
        folder.mkdir()
        for i in range(2):
            clean = synthetic_frame(i, 64, 48)
            write(folder / truth.format(i), clean)
            write(folder / inp.format(i), np.clip(clean.astype(int) + 30, 0, 255).astype(np.uint8))
        folders[name] = folder
    photos = tmp_path / "photos"
    photos.mkdir()
    write(photos / "a.png", synthetic_frame(3, 64, 48))
    folders["photos"] = photos
    return folders


def test_layouts_are_recognised(layouts):
    assert find_pairs(layouts["ceil"])[0] == "input / label1"
    assert find_pairs(layouts["real"])[0] == "input / background"
    assert find_pairs(layouts["flash"])[0] == "ambient / ambient_T"
    layout, pairs = find_pairs(layouts["dorm"])
    assert layout == "input / background" and len(pairs) == 2
    layout, pairs = find_pairs(layouts["photos"])
    assert layout == "clean photos" and pairs[0][1] is None


def test_evaluate_scores_each_method(layouts):
    result = evaluate(layouts["ceil"], builtin_methods())
    assert result.images == 2 and set(result.scores) == {"identity", "convex"}
    assert result.scores["identity"].psnr < 25
    clean = evaluate(layouts["photos"], builtin_methods())
    assert clean.scores["identity"].psnr == float("inf")  # an exact copy


def test_worst_image_is_finite_when_one_photo_changes_and_another_does_not(layouts):
    write(layouts["photos"] / "b.png", synthetic_frame(4, 64, 48))
    calls = []

    def brighten_the_second(rgb: np.ndarray) -> np.ndarray:  # a.png comes first: photos are sorted
        calls.append(rgb)
        return np.minimum(rgb, 254) + 1 if len(calls) == 2 else rgb

    score = evaluate(layouts["photos"], {"some": brighten_the_second}).scores["some"]
    assert score.psnr == float("inf") and 40 < score.psnr_worst < float("inf")


def test_gain_aligned_psnr_does_not_credit_a_change_of_exposure(layouts):
    darken = {"identity": lambda rgb: rgb, "darken": lambda rgb: (rgb * np.float32(0.8)).astype(np.uint8)}
    scores = evaluate(layouts["real"], darken).scores
    assert abs(scores["darken"].psnr - scores["identity"].psnr) > 1.0
    assert scores["darken"].psnr_aligned == pytest.approx(scores["identity"].psnr_aligned, abs=0.2)


def test_cli_table_and_json(layouts, dimming_model):
    args = ["eval", "--data", str(layouts["ceil"]), "--data", str(layouts["real"]), "--model", str(dimming_model), "-q"]
    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0, table.output
    for word in ("identity", "convex", "network", "gPSNR"):
        assert word in table.stdout
    data = json.loads(CliRunner().invoke(main, args + ["--json"]).stdout)
    assert [d["name"] for d in data] == ["ceil", "real"] and set(data[0]["scores"]) == {"identity", "convex", "network"}
    assert data[0]["scores"]["network"]["psnr_aligned"] > 0


def test_clean_photos_show_inf_and_json_null(layouts):
    args = ["eval", "--data", str(layouts["photos"]), "--methods", "identity,convex", "-q"]
    assert "inf" in CliRunner().invoke(main, args).stdout
    data = json.loads(CliRunner().invoke(main, args + ["--json"]).stdout)
    assert data[0]["scores"]["identity"]["psnr"] is None and data[0]["scores"]["convex"]["psnr"] > 0


def test_exception(tmp_path, layouts):
    with pytest.raises(InputOpenError, match="no images"):
        find_pairs(_empty(tmp_path))
    write(_empty(tmp_path) / "x-input.png", synthetic_frame(0, 16, 16))
    with pytest.raises(InputOpenError, match="not scoreable"):
        find_pairs(tmp_path / "empty")
    result = CliRunner().invoke(main, ["eval", "--data", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "not a folder" in result.stderr
    result = CliRunner().invoke(main, ["eval", "--data", str(layouts["ceil"]), "--methods", "magic"])
    assert result.exit_code == 2
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_text("not a model")
    for model in (bad_model, tmp_path / "absent.onnx"):
        result = CliRunner().invoke(main, ["eval", "--data", str(layouts["ceil"]), "--model", str(model), "-q"])
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir(exist_ok=True)
    return folder
