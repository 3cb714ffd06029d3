"""Public and local image datasets, loaded with Hugging Face `datasets` into arrays.

Only `fetch` downloads anything. The other functions read the digits shipped with scikit-learn, the
Parquet files that `fetch` wrote under resources/, or a Parquet file or image folder named in the config.
A missing file raises FileNotFoundError naming the rule or command that provides it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("heterodiff")

RESOURCES = Path("resources") / "datasets"


@dataclass(frozen=True)
class HubDataset:
    """A dataset on the Hugging Face Hub, with the columns that hold the image and the label."""

    repository: str
    image_column: str
    label_column: str | None  # None: the label is a CelebA attribute, chosen by data.images.attribute
    channels: int


# NOTE: these repository ids and column names have not been checked against the Hub, because fetch()
# was written on a machine without internet and has never run. It raises with the available columns
# when a column is missing.
HUB_DATASETS = {
    "mnist": HubDataset("ylecun/mnist", "image", "label", 1),
    "fashion_mnist": HubDataset("zalando-datasets/fashion_mnist", "image", "label", 1),
    "cifar10": HubDataset("uoft-cs/cifar10", "img", "label", 3),
    "celeba": HubDataset("flwrlabs/celeba", "image", None, 3),
}
LOCAL_SOURCES = ("parquet", "imagefolder")
SOURCES = ("digits", *HUB_DATASETS, *LOCAL_SOURCES)
NATIVE_SIZES = {"digits": (8, 8), "mnist": (28, 28), "fashion_mnist": (28, 28), "cifar10": (32, 32), "celeba": (218, 178)}


@dataclass
class SourceImages:
    """All images of a source as floats in [0, 1], shape (n, channels, height, width), and their labels."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def class_sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.n_classes)


def fetched_folder(name: str, attribute: str | None = None) -> Path:
    """Return the folder under resources/ where fetch() stores a Hub dataset."""
    return RESOURCES / (f"celeba-{attribute}" if name == "celeba" else name)


def source_id(images: dict) -> str:
    """Name the full source dataset readably; the classifier and its reference features are kept per id.

    Local files get a short hash of their path, so two files with the same name do not share a classifier.
    """
    name = images["source"]
    if name == "celeba":
        name += f"-{images['attribute']}"
    if name in LOCAL_SOURCES:
        digest = hashlib.sha256(str(images["path"]).encode()).hexdigest()[:8]
        name += f"-{Path(images['path']).stem}-{digest}"
    if images["image_size"] is not None:
        name += f"-{images['image_size']}px"
    if images["channels"] is not None:
        name += f"-{images['channels']}ch"
    return name


def source_files(images: dict) -> list[str]:
    """Return the files that make_dataset and train_classifier read for a source (none for digits)."""
    source = images["source"]
    if source in HUB_DATASETS:
        return [str(fetched_folder(source, images["attribute"]) / "data.parquet")]
    if source in LOCAL_SOURCES:
        return [str(images["path"])]
    return []


def fetch(name: str, attribute: str | None, output: str | Path) -> None:
    """Download a Hub dataset and store all its splits in one Parquet file with `image` and `label` columns.

    This is the only function that reaches the network. A split column keeps the Hub's split names.
    """
    import datasets

    if name not in HUB_DATASETS:
        raise ValueError(f"unknown Hub dataset {name!r}; expected one of {', '.join(HUB_DATASETS)}")
    entry = HUB_DATASETS[name]
    try:
        loaded = datasets.load_dataset(entry.repository)
    except Exception as error:  # datasets and huggingface_hub raise several types for a failed download
        raise RuntimeError(
            f"downloading {entry.repository} from the Hugging Face Hub failed ({error}). fetch_dataset needs "
            f"internet: run it on a machine that has it and copy resources/datasets/ here."
        ) from error
    parts = []
    for split, part in loaded.items():
        label_column = entry.label_column if entry.label_column is not None else _attribute_column(part, attribute, entry)
        part = part.select_columns([entry.image_column, label_column])
        if label_column != "label":
            part = part.rename_column(label_column, "label")
        if entry.image_column != "image":
            part = part.rename_column(entry.image_column, "image")
        if name == "celeba":
            # An attribute is a yes/no column; store it as a two-class label so that 1 means present.
            names = [f"not {attribute}", attribute]
            part = part.map(lambda row: {"label": int(row["label"] is True or row["label"] in (1, "1"))})
            part = part.cast_column("label", datasets.ClassLabel(names=names))
        parts.append(part.add_column("split", [split] * len(part)))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".partial")
    datasets.concatenate_datasets(parts).to_parquet(str(temporary))
    temporary.rename(output)
    log.info("stored %s (%s) in %s", name, entry.repository, output)


def _attribute_column(part, attribute: str | None, entry: HubDataset) -> str:
    if attribute is None:
        raise ValueError("data.images.attribute is missing; CelebA needs an attribute (for example Smiling) as the label")
    if attribute not in part.column_names:
        raise ValueError(
            f"attribute {attribute!r} is not a column of {entry.repository}; available: {', '.join(part.column_names)}"
        )
    return attribute


def _missing(path: Path, images: dict) -> FileNotFoundError:
    source = images["source"]
    if source in HUB_DATASETS:
        return FileNotFoundError(
            f"{path} not found: the {source} dataset is downloaded by the fetch_dataset rule. On a machine with "
            f"internet, run `snakemake --profile profiles/local {path}` and copy resources/ here."
        )
    return FileNotFoundError(f"data.images.path {path} not found; no rule writes it, so point the key at an existing {source}")


def _load_dataset(images: dict):
    """Load a stored or local dataset with `datasets`; return the Dataset, its image column and label column."""
    import datasets

    source = images["source"]
    paths = [Path(p) for p in source_files(images)]
    for path in paths:
        if not path.exists():
            raise _missing(path, images)
    if source == "imagefolder":
        loaded = datasets.load_dataset("imagefolder", data_dir=str(paths[0]), split="train")
    else:
        files = sorted(str(p) for p in paths[0].glob("*.parquet")) if paths[0].is_dir() else [str(paths[0])]
        loaded = datasets.load_dataset("parquet", data_files=files, split="train")
    image_column, label_column = images["image_column"], images["label_column"]
    if source in HUB_DATASETS:
        image_column, label_column = "image", "label"
    for column in (image_column, label_column):
        if column not in loaded.column_names:
            raise ValueError(
                f"column {column!r} not found in {paths[0]}; available: {', '.join(loaded.column_names)}. "
                f"Set data.images.image_column and data.images.label_column."
            )
    return loaded, image_column, label_column


def _labels(loaded, label_column: str) -> tuple[np.ndarray, list[str]]:
    """Return labels as 0..K-1 and the class names (ClassLabel names, or the sorted distinct values)."""
    import datasets

    feature = loaded.features[label_column]
    values = loaded[label_column]
    if isinstance(feature, datasets.ClassLabel):
        return np.asarray(values, dtype=np.int64), list(feature.names)
    distinct = sorted(set(values))
    index = {value: i for i, value in enumerate(distinct)}
    return np.asarray([index[value] for value in values], dtype=np.int64), [str(value) for value in distinct]


def _to_array(picture, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    picture = picture.convert(mode)
    if size is not None and picture.size != (size[1], size[0]):
        from PIL import Image

        picture = picture.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(picture, dtype=np.float32) / 255.0
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _digits(images: dict) -> SourceImages:
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.images.astype(np.float32) / 16.0  # scikit-learn stores 17 grey levels, 0 to 16
    if images["image_size"] is not None and images["image_size"] != 8:
        from PIL import Image

        size = images["image_size"]
        pictures = (Image.fromarray(np.uint8(np.round(p * 255))) for p in pixels)
        pixels = np.stack([_to_array(p, "L", (size, size))[0] for p in pictures])
    channels = images["channels"] or 1
    stacked = np.repeat(pixels[:, None], channels, axis=1)
    return SourceImages(stacked, digits.target.astype(np.int64), [str(name) for name in digits.target_names])


def load_source(images: dict) -> SourceImages:
    """Load every image of the configured source, resized to data.images.image_size if that is set."""
    if images["source"] == "digits":
        return _digits(images)
    loaded, image_column, label_column = _load_dataset(images)
    labels, class_names = _labels(loaded, label_column)
    pictures = loaded[image_column]
    channels = images["channels"] or HUB_DATASETS.get(images["source"], HubDataset("", "", "", 0)).channels
    if not channels:
        channels = 1 if pictures[0].mode in ("L", "1", "I", "I;16") else 3
    size = (images["image_size"], images["image_size"]) if images["image_size"] is not None else None
    if size is None:
        shapes = {(p.height, p.width) for p in pictures}
        if len(shapes) > 1:
            raise ValueError(
                f"the images of {images['source']} have {len(shapes)} different sizes, for example "
                f"{sorted(shapes)[:3]}; set data.images.image_size to resize them to one size"
            )
    mode = "L" if channels == 1 else "RGB"
    array = np.stack([_to_array(picture, mode, size) for picture in pictures])
    log.info("loaded %d images of shape %s in %d classes from %s", len(array), array.shape[1:], len(class_names), images["source"])
    return SourceImages(array, labels, class_names)
