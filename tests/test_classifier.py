"""EfficientNet-Lite0 classifier: strict weight load, real photos, class names, features."""

import pytest
import torch

from gcp_colorize.model import classifier as clf

skimage_data = pytest.importorskip("skimage.data")

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def classifier():
    torch.set_num_threads(2)
    return clf.ImageNetClassifier(device="cpu")


def photo(name):
    image = getattr(skimage_data, name)()
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def test_state_dict_keys_match_the_network_exactly():
    state = torch.load(clf.weights_path(), map_location="cpu", weights_only=True)
    net = clf.EfficientNetLite0()
    assert set(net.state_dict()) == set(state)
    assert all(net.state_dict()[k].shape == v.shape for k, v in state.items())
    del state["_fc.bias"]
    with pytest.raises(RuntimeError, match="_fc.bias"):
        net.load_state_dict(state, strict=True)


def test_cat_photo_is_a_cat_and_coffee_is_espresso(classifier):
    cat_photo = photo("chelsea")  # 300 x 451; coffee 400 x 600, squeezed to the same size
    batch = torch.cat([cat_photo, torch.nn.functional.interpolate(
        photo("coffee"), size=cat_photo.shape[-2:], mode="area")])
    cat, coffee = classifier.predict(batch, k=5)
    assert cat[0].index in CAT_CLASSES and cat[0].probability > 0.3
    assert coffee[0].name in ("espresso", "cup")
    assert [p.probability for p in cat] == sorted((p.probability for p in cat), reverse=True)
    assert classifier.predict(photo("chelsea"), k=1)[0][0].index == cat[0].index


def test_predict_rejects_bad_input(classifier):
    with pytest.raises(ValueError, match="B, 3, H, W"):
        classifier.predict(torch.zeros(1, 4, 32, 32))
    with pytest.raises(ValueError, match="k must be"):
        classifier.predict(torch.zeros(1, 3, 32, 32), k=0)


def test_feature_maps_shapes_and_gradients(classifier):
    x = torch.rand(2, 3, 64, 96, requires_grad=True)
    maps = classifier.feature_maps(x)
    assert [m.shape[1] for m in maps] == list(clf.FEATURE_CHANNELS)
    for m, stride in zip(maps, clf.FEATURE_STRIDES):
        assert m.shape[-2:] == (64 // stride, 96 // stride)
    sum(m.square().mean() for m in maps).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in classifier.net.parameters())  # frozen
    assert len(classifier.feature_maps(x, last_stage=3)) == 4


def test_semantic_maps_are_hypercolumns_of_the_classifiers_input(classifier):
    """Any photo size gives the 28 x 28 grid of the 224-px input, the stages stacked,
    the same as resizing the photo to 224 first; the same pass gives the logits."""
    x = torch.rand(2, 3, 64, 96)
    logits, maps = classifier.read(x, maps=True)
    assert maps.shape == (2, clf.SEMANTIC_CHANNELS, 28, 28) and not maps.requires_grad
    assert torch.allclose(logits, classifier.net(clf.classifier_input(x)), atol=1e-5)
    assert classifier.read(x)[1] is None
    stages = classifier.feature_maps(x.new_zeros(1, 3, 224, 224) + 0.5, max(clf.SEMANTIC_STAGES))
    assert clf.SEMANTIC_CHANNELS == sum(stages[i].shape[1] for i in clf.SEMANTIC_STAGES)
    resized = torch.nn.functional.interpolate(x, size=(224, 224), mode="bicubic",
                                              antialias=True).clamp(0, 1)
    assert torch.allclose(classifier.read(resized, maps=True)[1], maps, atol=1e-5)


def test_class_lookup_by_index_and_exact_name():
    classes = clf.ImageNetClasses()
    assert len(classes) == 1000
    assert classes.name(967) == "espresso"
    assert classes.index_of("Espresso") == 967
    assert classes.index_of("tabby cat") == 281  # any synonym
    assert classes.resolve("967") == 967 and classes.resolve(3) == 3
    with pytest.raises(KeyError, match="ambiguous"):
        classes.index_of("crane")  # the bird 134 and the machine 517
    with pytest.raises(KeyError, match="no ImageNet class"):
        classes.index_of("spaceship that does not exist")
    with pytest.raises(IndexError):
        classes[1000]


def test_class_search_ranks_whole_words_first():
    classes = clf.ImageNetClasses()
    found = [c.index for c in classes.search("CAT")]
    assert set(found[:6]) <= CAT_CLASSES | {383, 387}  # "... cat" whole-word synonyms
    assert 484 in found  # catamaran: substring
    assert found.index(282) < found.index(484)
    assert classes.search("espresso")[0].index == 967
    assert classes.search("  ") == []
    assert classes.search("qqqxz") == []


def test_classes_command_lists_and_searches(capsys):
    from gcp_colorize.cli import main
    assert main(["classes", "espresso"]) == 0
    assert capsys.readouterr().out.split()[0] == "967"
    assert main(["classes"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1000
    assert main(["classes", "qqqxz"]) == 1
