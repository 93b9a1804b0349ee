"""`data prepare` end to end on fake packages (apt replaced by a local copy), the photo
list, splits, licences, and the TrainingPhotos dataset built on the result."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from gcp_colorize.data import prepare as prep
from gcp_colorize.data.dataset import TrainingPhotos
from gcp_colorize.data.debian import PackageFetchError, download_and_extract
from gcp_colorize.data.licences import licence_note
from gcp_colorize.data.manifest import load_manifest
from gcp_colorize.data.photo_list import REPO_ROOT, PhotoSource, read_photo_list
from test_data_qt_resources import write_rcc

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2020 Somebody
License: GPL-2+

Files: src/activities/zoo/resource/*.jpg
Copyright: 2019 Photographer
License: CC-BY-SA-4.0
"""


def photo_pixels(width, height, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1)
    return (base + rng.integers(0, 20, base.shape)).clip(0, 255).astype(np.uint8)


@pytest.fixture
def fake_packages(tmp_path):
    """Unpacked package trees, and the photo list naming their photos."""
    roots = tmp_path / "packages"
    wallpaper = photo_pixels(1000, 600, 0)
    pkg = roots / "pkg-photos"
    (pkg / "usr/share/backgrounds").mkdir(parents=True)
    Image.fromarray(wallpaper).save(pkg / "usr/share/backgrounds/wide.png")
    Image.fromarray(wallpaper).save(pkg / "usr/share/backgrounds/copy.png")  # duplicate pixels
    Image.fromarray(photo_pixels(200, 150, 1)).save(pkg / "usr/share/backgrounds/small.jpg")
    (pkg / "usr/share/doc/pkg-photos").mkdir(parents=True)
    (pkg / "usr/share/doc/pkg-photos/copyright").write_text(COPYRIGHT)

    cutout = np.zeros((200, 300, 4), np.uint8)
    cutout[..., :3] = photo_pixels(300, 200, 2)
    cutout[50:150, 100:220, 3] = 255  # opaque 120x100 box, the rest transparent
    pkg = roots / "pkg-cutouts"
    (pkg / "usr/share/stamps").mkdir(parents=True)
    Image.fromarray(cutout, "RGBA").save(pkg / "usr/share/stamps/box.png")

    webp = tmp_path / "cat.webp"
    Image.fromarray(photo_pixels(320, 240, 3)).save(webp, lossless=True)
    pkg = roots / "pkg-rcc"
    (pkg / "usr/share/game/rcc").mkdir(parents=True)
    write_rcc(pkg / "usr/share/game/rcc/zoo.rcc",
              {"gcompris/src/activities/zoo/resource/cat.webp": webp.read_bytes()},
              compress={"cat.webp"})
    (pkg / "usr/share/doc/pkg-rcc").mkdir(parents=True)
    (pkg / "usr/share/doc/pkg-rcc/copyright").write_text(COPYRIGHT)

    listing = tmp_path / "photos.tsv"
    listing.write_text(
        "package\tpath_inside_package\twidth\theight\n"
        "pkg-photos\t/usr/share/backgrounds/wide.png\t1000\t600\n"
        "pkg-photos\t/usr/share/backgrounds/copy.png\t1000\t600\n"
        "pkg-photos\t/usr/share/backgrounds/small.jpg\t200\t150\n"
        "pkg-cutouts\t/usr/share/stamps/box.png\t300\t200\n"
        "pkg-rcc\trcc:gcompris/src/activities/zoo/resource/cat.webp\t320\t240\n")
    return roots, listing


@pytest.fixture
def fake_apt(monkeypatch, fake_packages):
    roots, _ = fake_packages
    calls = []

    def download(package, workdir):
        calls.append(package)
        shutil.copytree(roots / package, workdir / "root")
        return workdir / "root"

    monkeypatch.setattr(prep, "download_and_extract", download)
    return calls


@pytest.fixture
def prepared(tmp_path, fake_packages, fake_apt, monkeypatch):
    torch.set_num_threads(2)
    monkeypatch.setitem(prep.SETTINGS, "val_fraction", 0.5)  # cat.webp -> val, the rest train
    cache = tmp_path / "cache"
    records = prep.prepare(cache, fake_packages[1], log=lambda m: None, device="cpu")
    return cache, records


def test_prepare_builds_the_cache(prepared, fake_apt):
    cache, records = prepared
    assert sorted(fake_apt) == ["pkg-cutouts", "pkg-photos", "pkg-rcc"]
    assert len(records) == 5
    wide = records["pkg-photos/backgrounds_wide.png"]
    assert wide.size == [640, 384]  # short side 600 -> 384
    assert Image.open(cache / wide.file).size == (640, 384)
    assert records["pkg-photos/backgrounds_copy.png"].duplicate_of == wide.name
    assert not records["pkg-photos/backgrounds_copy.png"].usable
    small = records["pkg-photos/backgrounds_small.jpg"]
    assert small.size == [200, 150] and not small.has_alpha  # never upscaled
    box = records["pkg-cutouts/stamps_box.png"]
    assert box.has_alpha and box.size == [120, 100] and box.opaque_fraction == 1.0
    assert Image.open(cache / box.file).mode == "RGBA"
    cat = records["pkg-rcc/zoo_resource_cat.webp"]
    assert cat.size == [320, 240]
    stored = np.asarray(Image.open(cache / cat.file))
    assert np.array_equal(stored, photo_pixels(320, 240, 3))  # lossless all the way
    for record in records.values():
        if record.usable:
            assert len(record.labels) == 5 and 0 <= record.labels[0][0] < 1000
            assert record.split in ("train", "val")
    assert cat.licence == "CC-BY-SA-4.0; 2019 Photographer"  # .jpg source of the .webp
    assert wide.licence == "GPL-2+; 2020 Somebody"
    assert box.licence.startswith("unknown")
    assert (cache / "licences/pkg-rcc.copyright").is_file()
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["settings"] == prep.SETTINGS and len(manifest["photos"]) == 5
    assert not list(cache.glob("unpack-*"))  # temporary trees removed


def test_prepare_is_idempotent_and_redoes_only_missing_work(prepared, fake_packages, fake_apt):
    cache, records = prepared
    before = (cache / "manifest.json").read_text()
    fake_apt.clear()
    again = prep.prepare(cache, fake_packages[1], log=lambda m: None, device="cpu")
    assert fake_apt == [] and (cache / "manifest.json").read_text() == before
    (cache / records["pkg-cutouts/stamps_box.png"].file).unlink()
    prep.prepare(cache, fake_packages[1], log=lambda m: None, device="cpu")
    assert fake_apt == ["pkg-cutouts"]
    assert set(again) == set(load_manifest(cache)[1])


def test_prepare_reports_missing_photos_and_keeps_the_rest(tmp_path, fake_packages, fake_apt):
    listing = tmp_path / "bad.tsv"
    listing.write_text(fake_packages[1].read_text()
                       + "pkg-rcc\trcc:gcompris/none.webp\t1\t1\n"
                       + "pkg-photos\t/usr/share/none.jpg\t1\t1\n")
    cache = tmp_path / "cache"
    with pytest.raises(prep.PrepareError, match="2 photos could not be prepared"):
        prep.prepare(cache, listing, log=lambda m: None, device="cpu")
    assert len(load_manifest(cache)[1]) == 5


def test_prepare_refuses_a_cache_inside_the_repository(fake_packages):
    with pytest.raises(prep.PrepareError, match="inside the repository"):
        prep.prepare(REPO_ROOT / "data-cache", fake_packages[1], log=lambda m: None)
    assert not (REPO_ROOT / "data-cache").exists()


def test_decode_rejects_garbage():
    with pytest.raises(prep.PrepareError, match="cannot decode"):
        prep.decode(b"not an image", "x")


def test_split_is_stable_and_about_eight_percent():
    photos = [PhotoSource("p", f"/usr/share/x/{i}.jpg", 1, 1) for i in range(2000)]
    splits = [prep.split_of(p, 0.08) for p in photos]
    assert splits == [prep.split_of(p, 0.08) for p in photos]
    assert 0.06 < splits.count("val") / len(splits) < 0.10
    tiles = [PhotoSource("stellarium-data", f"/usr/share/stellarium/landscapes/site/t{i}.png", 1, 1)
             for i in range(8)]
    assert len({prep.split_of(t, 0.5) for t in tiles}) == 1  # one panorama, one split


def test_photo_list_errors(tmp_path):
    path = tmp_path / "list.tsv"
    path.write_text("pkg\tpath\n")
    with pytest.raises(ValueError, match="header"):
        read_photo_list(path)
    path.write_text("package\tpath_inside_package\twidth\theight\np\t/a.jpg\tx\t3\n")
    with pytest.raises(ValueError, match=":2: width and height"):
        read_photo_list(path)
    with pytest.raises(FileNotFoundError, match="--list"):
        read_photo_list(tmp_path / "none.tsv")


def test_the_shared_photo_list_parses():
    listing = REPO_ROOT.parent / "shared" / "reference" / "training-photos.tsv"
    if not listing.is_file():
        pytest.skip("shared/reference is not beside the repository")
    photos = read_photo_list(listing)
    assert len(photos) > 500
    assert sum(p.in_resource_archive for p in photos) > 200


def test_licence_note_follows_dep5(tmp_path):
    path = tmp_path / "copyright"
    path.write_text(COPYRIGHT + "\nFiles: 16.04/Bridge.jpg\nCopyright: A\nLicense: CC-BY-4.0\n")
    assert licence_note(path, "/usr/share/x.png") == "GPL-2+; 2020 Somebody"
    assert licence_note(path, "gcompris/src/activities/zoo/resource/a.jpg").startswith("CC-BY-SA-4.0")
    assert licence_note(path, "/usr/share/backgrounds/Bridge.jpg") == "CC-BY-4.0; A"
    assert licence_note(tmp_path / "none", "x").startswith("unknown")


def test_apt_failure_says_why(tmp_path):
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get on this machine")
    with pytest.raises(PackageFetchError, match="apt-get download"):
        download_and_extract("gcp-colorize-no-such-package-xyz", tmp_path)


def test_dataset_crops_are_deterministic_per_seed_and_epoch(prepared):
    cache, _ = prepared
    a = TrainingPhotos(cache, "train", size=32, seed=5)
    b = TrainingPhotos(cache, "train", size=32, seed=5)
    item = a[0]
    assert item["rgb"].shape == (3, 32, 32) and item["alpha"].shape == (1, 32, 32)
    assert 0 <= item["rgb"].min() and item["rgb"].max() <= 1
    assert item["label"] == a.records[0].labels[0][0]
    assert torch.equal(a[0]["rgb"], b[0]["rgb"])
    b.set_epoch(1)
    assert not torch.equal(a[0]["rgb"], b[0]["rgb"])
    loader = torch.utils.data.DataLoader(a, batch_size=len(a))
    batch = next(iter(loader))
    assert batch["rgb"].shape == (len(a), 3, 32, 32) and batch["label"].dtype == torch.int64


def test_dataset_cutouts_are_composited_on_white_with_alpha(prepared):
    cache, _ = prepared
    for split in ("train", "val"):
        ds = TrainingPhotos(cache, split, size=16)
        for i in range(len(ds)):
            item = ds[i]
            transparent = item["alpha"][0] < 0.01
            assert torch.all(item["rgb"][:, transparent] > 0.99)


def test_dataset_validation_views_are_fixed_and_errors_are_clear(prepared, tmp_path):
    cache, _ = prepared
    train, val = TrainingPhotos(cache, "train", size=24), TrainingPhotos(cache, "val", size=24)
    assert (len(train), len(val)) == (3, 1)
    first = val[0]["rgb"]
    val.set_epoch(3)
    assert torch.equal(first, val[0]["rgb"])
    centre = torch.from_numpy(photo_pixels(320, 240, 3)[:, 40:280]).permute(2, 0, 1) / 255
    expected = torch.nn.functional.interpolate(centre[None].float(), size=(24, 24), mode="bilinear",
                                               antialias=True)[0]
    assert torch.allclose(first, expected, atol=1e-5)  # the centre square of cat.webp
    with pytest.raises(FileNotFoundError, match="data prepare"):
        TrainingPhotos(tmp_path / "empty", "train")
    with pytest.raises(ValueError, match="split"):
        TrainingPhotos(cache, "test")
