"""The classifier of image metrics: its documented accuracy on digits, balanced splits and the accuracy bar."""

import numpy as np
import pytest
import torch

from heterodiff import classifier
from heterodiff.config import validate
from heterodiff.image_sources import load_source


def settings(**overrides):
    config = validate({"studies": {"s": {"data": {"kind": "images"}, "evaluate": {"images": {"classifier": overrides}}}}})
    return config["studies"]["s"]["evaluate"]["images"]["classifier"]


@pytest.fixture(scope="module")
def digits():
    return load_source({"source": "digits", "image_size": None, "channels": None})


@pytest.fixture(scope="module")
def trained(digits):
    torch.set_num_threads(1)
    return classifier.train_classifier(digits, settings(device="cpu"))


def test_reaches_documented_accuracy_on_digits(trained):
    _, facts = trained
    assert facts["accuracy"] >= settings()["min_accuracy"] == 0.95
    assert min(facts["accuracy_per_class"]) >= 0.8
    assert facts["n_test"] == 350  # 20 % of the 174 images of the smallest class, ten classes


def test_balanced_split_is_balanced_and_disjoint(digits):
    train, test = classifier.balanced_split(digits.labels, 10, 0.2, np.random.default_rng(0))
    assert np.bincount(digits.labels[train]).tolist() == [139] * 10
    assert np.bincount(digits.labels[test]).tolist() == [35] * 10
    assert not set(train) & set(test)


def test_saved_classifier_predicts_the_same(trained, digits, tmp_path):
    model, _ = trained
    classifier.save(tmp_path / "c.pt", model, digits.images.shape[1:], 10, 64)
    rows = digits.images[:50].reshape(50, -1) * 2 - 1
    first_labels, first_features = classifier.predict(model, rows, digits.images.shape[1:])
    second_labels, second_features = classifier.predict(classifier.load(tmp_path / "c.pt"), rows, digits.images.shape[1:])
    assert np.array_equal(first_labels, second_labels)
    assert np.allclose(first_features, second_features)
    assert first_features.shape == (50, 64)


def test_low_accuracy_stops_or_warns(caplog):
    with pytest.raises(classifier.LowAccuracy, match="accuracy 0.5000 is below .*min_accuracy = 0.95"):
        classifier.check_accuracy(0.5, settings())
    assert classifier.check_accuracy(0.5, settings(on_low_accuracy="warn")) is False
    assert "below evaluate.images.classifier.min_accuracy" in caplog.text
    assert classifier.check_accuracy(0.97, settings()) is True
