"""The classifier of the image metrics: a small CNN trained inside the pipeline on the balanced source data.

Its predictions give the class of a generated image, and its penultimate layer is the feature space of
the per-class precision, recall and Fréchet distance. No pretrained network is downloaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from heterodiff.image_sources import SourceImages
from heterodiff.images import to_model_range
from heterodiff.runtime import describe_device, select_device

log = logging.getLogger("heterodiff")


class LowAccuracy(RuntimeError):
    """The classifier's test accuracy is below evaluate.images.classifier.min_accuracy."""


class ClassifierCNN(nn.Module):
    """Convolutions with max-pooling down to about 4x4 pixels, then a linear feature layer and the logits."""

    def __init__(self, channels: int, height: int, width: int, n_classes: int, feature_dim: int = 64, width_base: int = 32):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width_base, 3, padding=1), nn.ReLU(), nn.Conv2d(width_base, width_base, 3, padding=1), nn.ReLU()]
        current, size = width_base, min(height, width)
        while size > 4 and current < 4 * width_base:
            layers += [nn.MaxPool2d(2), nn.Conv2d(current, 2 * current, 3, padding=1), nn.ReLU()]
            current, size = 2 * current, size // 2
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.features = nn.Linear(4 * current, feature_dim)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(feature_dim, n_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the feature vectors (the linear layer before the last ReLU)."""
        return self.features(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def balanced_split(labels: np.ndarray, n_classes: int, test_fraction: float, rng: np.random.Generator):
    """Subsample every class to the smallest class size, then split each class into train and test.

    Returns the training and test indices. Every class has the same number of images in each part.
    """
    per_class = int(np.bincount(labels, minlength=n_classes).min())
    n_test = max(1, int(round(per_class * test_fraction)))
    train, test = [], []
    for label in range(n_classes):
        members = rng.permutation(np.flatnonzero(labels == label))[:per_class]
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.concatenate(train), np.concatenate(test)


def _images(rows: np.ndarray, image_shape) -> torch.Tensor:
    return torch.from_numpy(np.asarray(rows, dtype=np.float32)).reshape(len(rows), *(int(s) for s in image_shape))


@torch.no_grad()
def predict(model: ClassifierCNN, rows: np.ndarray, image_shape, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Return the predicted class and the feature vector of each flat row in [-1, 1]."""
    model.eval()
    device = next(model.parameters()).device
    labels, features = [], []
    for start in range(0, len(rows), batch_size):
        batch = _images(rows[start : start + batch_size], image_shape).to(device)
        embedded = model.embed(batch)
        labels.append(model.head(embedded).argmax(dim=1).cpu().numpy())
        features.append(embedded.cpu().numpy().astype(np.float64))
    return np.concatenate(labels), np.concatenate(features)


def train_classifier(source: SourceImages, settings: dict) -> tuple[ClassifierCNN, dict]:
    """Train the CNN on the balanced source and return it (on the CPU) with its test accuracy, overall and per class."""
    device = select_device(settings["device"])
    rng = np.random.default_rng(settings["seed"])
    torch.manual_seed(settings["seed"])
    train_index, test_index = balanced_split(source.labels, source.n_classes, settings["test_fraction"], rng)
    x = to_model_range(source.images)
    image_shape = source.images.shape[1:]
    model = ClassifierCNN(*image_shape, n_classes=source.n_classes, feature_dim=settings["feature_dim"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    generator = torch.Generator().manual_seed(settings["seed"])
    x_train = _images(x[train_index], image_shape).to(device)
    y_train = torch.from_numpy(source.labels[train_index]).to(device)

    log.info(
        "classifier: %d training and %d test images (%d classes, balanced), %d epochs, device %s",
        len(train_index), len(test_index), source.n_classes, settings["epochs"], describe_device(device),
    )
    for epoch in range(settings["epochs"]):
        model.train()
        order = torch.randperm(len(x_train), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(order), settings["batch_size"]):
            batch = order[start : start + settings["batch_size"]]
            loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        log.info("classifier epoch %d/%d  loss %.4f", epoch + 1, settings["epochs"], total / len(order))

    predicted, _ = predict(model, x[test_index], image_shape)
    truth = source.labels[test_index]
    per_class = [float((predicted[truth == c] == c).mean()) for c in range(source.n_classes)]
    accuracy = float((predicted == truth).mean())
    log.info("classifier test accuracy %.4f; per class %s", accuracy, np.round(per_class, 3).tolist())
    return model.cpu(), {"accuracy": accuracy, "accuracy_per_class": per_class, "n_train": len(train_index), "n_test": len(test_index)}


def check_accuracy(accuracy: float, settings: dict) -> bool:
    """Stop or warn when the accuracy is below the bar; return whether the classifier can be trusted."""
    bar = settings["min_accuracy"]
    if accuracy >= bar:
        return True
    message = (
        f"classifier held-out accuracy {accuracy:.4f} is below evaluate.images.classifier.min_accuracy = {bar}: "
        f"class shares and per-class precision, recall and Fréchet distance rest on its predictions"
    )
    if settings["on_low_accuracy"] == "stop":
        raise LowAccuracy(message + "; train it longer (epochs) or set on_low_accuracy: warn to continue")
    log.warning("!" * 20 + " " + message + " " + "!" * 20)
    return False


def reference_features(model: ClassifierCNN, source: SourceImages, per_class: int, rng: np.random.Generator):
    """Return the features and labels of at most per_class source images of each class (the real sets)."""
    chosen = np.concatenate([rng.permutation(np.flatnonzero(source.labels == c))[:per_class] for c in range(source.n_classes)])
    _, features = predict(model, to_model_range(source.images[chosen]), source.images.shape[1:])
    return features, source.labels[chosen]


def save(path: str | Path, model: ClassifierCNN, image_shape, n_classes: int, feature_dim: int) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"state": model.state_dict(), "image_shape": [int(s) for s in image_shape], "n_classes": n_classes, "feature_dim": feature_dim}
    temporary = path.with_name(path.name + ".partial")
    torch.save(payload, temporary)
    temporary.replace(path)


def load(path: str | Path) -> ClassifierCNN:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"classifier {path} not found; it is written by the train_classifier rule")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = ClassifierCNN(*payload["image_shape"], n_classes=payload["n_classes"], feature_dim=payload["feature_dim"])
    model.load_state_dict(payload["state"])
    return model.eval()
