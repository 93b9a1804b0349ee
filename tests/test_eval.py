"""The evaluation pipeline and the `eval` command, with plain-function methods."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gcp_colorize.evaluation import metrics
from gcp_colorize.evaluation.evaluate import (GRAY_INPUT, Evaluation, Settings, gray_input,
                                              load_photos)
from gcp_colorize.evaluation.report import markdown, write_report
from gcp_colorize.model.classifier import ImageNetClassifier
from gcp_colorize.model.lab import lab_to_rgb


def small_features(images: torch.Tensor) -> np.ndarray:
    """Stand-in for Inception in fast tests: 4 x 4 average colours, (N, 48)."""
    pooled = torch.nn.functional.adaptive_avg_pool2d(images.float(), 4)
    return pooled.flatten(1).double().numpy()


def tint(gray: np.ndarray, a: float, b: float) -> np.ndarray:
    """The gray image with constant a*, b* added at the same L."""
    lab = metrics.lab(gray)
    lab[..., 1], lab[..., 2] = a, b
    rgb = lab_to_rgb(torch.from_numpy(lab).permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    return rgb.numpy().astype(np.float32)


def tinted(gray, alternatives):
    hues = [(20, 30), (-30, 10), (5, -35), (30, -10)]
    return [tint(gray, *hues[k]) for k in range(alternatives + 1)]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(64, 96), (80, 80), (72, 60)]):
        y, x = np.mgrid[0:h, 0:w]
        rgb = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 60 * i)], -1)
        Image.fromarray((rgb + rng.integers(0, 30, rgb.shape)).clip(0, 255).astype(np.uint8)).save(
            folder / f"p{i}.png")
    Image.fromarray(np.full((40, 40), 128, np.uint8)).save(folder / "gray.png")  # skipped
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")  # skipped with a message
    return folder


@pytest.fixture(scope="module")
def classifier():
    torch.set_num_threads(2)
    return ImageNetClassifier("cpu")


def test_load_photos_keeps_colour_photos_only(photo_folder):
    messages = []
    photos = load_photos(photo_folder, max_side=64, log=messages.append)
    assert [p.name for p in photos] == ["p0", "p1", "p2"]
    assert photos[1].rgb.shape == (64, 64, 3) and photos[0].rgb.shape == (43, 64, 3)
    assert any("broken.jpg" in m for m in messages) and any("gray.png" in m for m in messages)
    assert metrics.luminance_drift(photos[0].gray, photos[0].rgb) < 0.01


def test_load_photos_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_photos(tmp_path / "missing", 512)
    with pytest.raises(ValueError, match="no colour photos"):
        load_photos(tmp_path, 512)


def test_evaluation_rows_alternatives_and_report(photo_folder, classifier, tmp_path):
    photos = load_photos(photo_folder, max_side=128, log=lambda m: None)
    truth = {p.name: p.rgb for p in photos}
    methods = {GRAY_INPUT: gray_input, "tinted": tinted,
               "oracle": lambda gray, n: [next(v for v in truth.values() if v.shape == gray.shape)]}
    settings = Settings(alternatives=3, crop_size=32, crops_per_image=6, seed=1, variation=2.0,
                        class_alternatives=False)
    evaluation = Evaluation(photos, settings, small_features, classifier, log=lambda m: None)
    results, outputs = evaluation.run(methods, main="tinted")

    gray, tinted_scores, oracle = (results["methods"][k] for k in (GRAY_INPUT, "tinted", "oracle"))
    assert gray["mean"]["colourfulness"] == pytest.approx(0, abs=1e-6)
    assert gray["mean"]["luminance_drift"] < 0.01
    assert 0 < tinted_scores["mean"]["luminance_drift"] < 1  # constant tints leave the gamut here and there
    assert tinted_scores["mean"]["colourfulness"] > 5
    assert oracle["mean"]["ciede2000"] == 0 and oracle["fid_crops"] == pytest.approx(0, abs=1e-6)
    assert oracle["mean"]["top1_agreement"] == 1.0 and oracle["mean"]["psnr"] == float("inf")
    assert gray["per_image"]["p0"]["psnr"] == pytest.approx(metrics.psnr(photos[0].gray, photos[0].rgb))
    assert len(outputs["tinted"]["p1"]) == 4 and len(outputs[GRAY_INPUT]["p1"]) == 1

    alternatives = results["alternatives"]
    assert alternatives["count"] == 3 and len(alternatives["per_alternative"]) == 3
    assert alternatives["mean_diversity"] > 8  # four clearly different tints
    for scores in alternatives["per_alternative"]:
        assert scores["fid_crops_ratio"] == pytest.approx(scores["fid_crops"] / tinted_scores["fid_crops"])

    md, js, png = write_report(tmp_path / "report", results, outputs, photos)
    text = md.read_text()
    for row in ("| gray input |", "| tinted |", "| oracle |", "## Alternatives of `tinted`", "at variation 2)",
                "grid.png"):
        assert row in text
    data = json.loads(js.read_text())
    assert data["methods"]["oracle"]["mean"]["psnr"] is None  # inf is not JSON
    by_class = markdown({**data, "settings": {**data["settings"], "class_alternatives": True}}, "grid.png")
    assert "3 alternatives from likely classes that colour differently)" in by_class and "at variation" not in by_class
    grid = Image.open(png)
    assert grid.size[0] == 192 * 7  # gray, tinted, oracle, 3 alternatives, ground truth


def test_photos_shorter_than_the_crop_size_are_measured(photo_folder, classifier):
    photos = load_photos(photo_folder, max_side=128, log=lambda m: None)  # sides 60 to 96
    evaluation = Evaluation(photos, Settings(alternatives=0, crops_per_image=2, crop_size=90),
                            small_features, classifier, log=lambda m: None)
    results, _ = evaluation.run({"tinted": tinted}, main=None)
    assert np.isfinite(results["methods"]["tinted"]["fid_crops"])
    assert results["methods"]["tinted"]["fid_crops"] > 0


def test_a_method_returning_the_wrong_size_is_an_error(photo_folder, classifier):
    photos = load_photos(photo_folder, max_side=64, log=lambda m: None)
    evaluation = Evaluation(photos, Settings(crops_per_image=2, crop_size=16), small_features,
                            classifier, log=lambda m: None)
    with pytest.raises(ValueError, match="wrong size"):
        evaluation.run({"bad": lambda gray, n: [gray[:10]]}, main=None)


def test_inception_network_gives_pool3_features():
    from gcp_colorize.evaluation.inception import InceptionFeatures
    torch.set_num_threads(2)
    images = torch.rand(2, 3, 64, 80)
    features = InceptionFeatures("cpu")(images, batch_size=2)
    assert features.shape == (2, 2048) and features.dtype == np.float64
    assert np.all(features >= 0) and np.isfinite(features).all()  # pooled ReLU outputs
    assert not np.allclose(features[0], features[1])
    with pytest.raises(ValueError, match="N, 3, H, W"):
        InceptionFeatures("cpu")(images[:, :2])


def test_eval_command(photo_folder, tmp_path, capsys, monkeypatch):
    from gcp_colorize.cli import main
    from gcp_colorize.evaluation import inception
    monkeypatch.setattr(inception, "InceptionFeatures", lambda device: small_features)
    out = tmp_path / "out"
    assert main(["eval", "--images", str(photo_folder), "--weights", "none", "--crops", "2",
                 "--crop-size", "48", "--threads", "2", "--variation", "0.5", "--no-class-alternatives",
                 "-o", str(out)]) == 0
    results = json.loads((out / "report.json").read_text())
    assert results["settings"]["variation"] == 0.5 and results["settings"]["class_alternatives"] is False
    assert list(results["methods"]) == [GRAY_INPUT] and results["photos"] == ["p0", "p1", "p2"]
    assert results["methods"][GRAY_INPUT]["fid_crops"] > 0
    assert main(["eval", "--images", str(tmp_path / "none"), "-o", str(out)]) == 1
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["eval", "--images", str(photo_folder), "--variation", "5", "-o", str(out)])
    assert refused.value.code == 2 and "--variation: must be between 0 and 4" in capsys.readouterr().err


def test_eval_command_makes_class_alternatives_by_default(photo_folder, tmp_path, monkeypatch):
    """By default the evaluated Colorizer makes its alternatives from other likely classes: each
    output of a photo is labelled with another class, and the report says where they came from."""
    from gcp_colorize import colorizer as colorizer_module
    from gcp_colorize.cli import main
    from gcp_colorize.evaluation import inception
    monkeypatch.setattr(inception, "InceptionFeatures", lambda device: small_features)
    classes_made = []
    real_colorize = colorizer_module.Colorizer.colorize

    def recording_colorize(self, *args, **kwargs):
        results = real_colorize(self, *args, **kwargs)
        classes_made.append([r.class_index for r in results])
        return results
    monkeypatch.setattr(colorizer_module.Colorizer, "colorize", recording_colorize)
    out = tmp_path / "out"
    assert main(["eval", "--images", str(photo_folder), "--weights", "random:tiny", "--device", "cpu",
                 "--alternatives", "2", "--crops", "2", "--crop-size", "48",
                 "--threads", "2", "-o", str(out)]) == 0
    assert len(classes_made) == 3 and all(len(set(c)) == 3 for c in classes_made)
    assert json.loads((out / "report.json").read_text())["settings"]["class_alternatives"] is True
    assert "2 alternatives from likely classes that colour differently" in (out / "report.md").read_text()


def test_dev_set_is_gathered(tmp_path):
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from gcp_colorize.evaluation.dev_set import DEV_PHOTOS, gather_dev_set
    paths = gather_dev_set(tmp_path)
    assert [p.stem for p in paths] == list(DEV_PHOTOS)
    assert all(Image.open(p).mode == "RGB" for p in paths)
    assert gather_dev_set(tmp_path) == paths  # existing files are kept


def test_validation_split_links_the_opaque_held_out_photos(photo_folder, tmp_path):
    from gcp_colorize.data.manifest import PhotoRecord, save_manifest
    from gcp_colorize.evaluation.validation_split import link_validation_split
    cache = tmp_path / "cache"
    (cache / "photos" / "pkg").mkdir(parents=True)

    def record(name, split, **fields):
        file = f"photos/pkg/{name}.png"
        (cache / file).write_bytes((photo_folder / "p0.png").read_bytes())
        return PhotoRecord(name, "pkg", name, "CC0", [96, 64], name, split, file, [96, 64],
                           labels=[[0, "tench", 0.5]], **fields)
    records = [record("b", "val"), record("a", "val"), record("train", "train"),
               record("cutout", "val", has_alpha=True, opaque_fraction=0.4),
               PhotoRecord("copy", "pkg", "copy", "CC0", [96, 64], "a", "val", duplicate_of="a")]
    with pytest.raises(FileNotFoundError, match="data prepare"):
        link_validation_split(tmp_path / "empty", cache)
    save_manifest(cache, {}, {r.name: r for r in records})
    links = link_validation_split(tmp_path / "photos", cache)
    assert sorted(p.name for p in links) == ["a.png", "b.png"]
    assert [p.name for p in load_photos(tmp_path / "photos", 512)] == ["a", "b"]
    (cache / "photos" / "other").mkdir()
    clash = record("a", "val")
    clash.name, clash.package, clash.file = "other/a", "other", "photos/other/a.png"
    (cache / clash.file).write_bytes((photo_folder / "p0.png").read_bytes())
    save_manifest(cache, {}, {r.name: r for r in records + [clash]})
    with pytest.raises(ValueError, match="share a file name"):
        link_validation_split(tmp_path / "clash", cache)
