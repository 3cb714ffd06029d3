"""Image datasets: loading through `datasets`, rebalancing counts, held-out sets, U-Net sizes and config checks."""

import numpy as np
import pytest
import torch
from conftest import tiny_image_run
from PIL import Image

from heterodiff import training
from heterodiff.config import ConfigError, expand, validate
from heterodiff.image_models import make_unet
from heterodiff.image_sources import SourceImages, load_source, source_id
from heterodiff.images import ImageDataset, make_image_dataset, rebalanced_counts


def image_params(**images):
    """Return resolved data parameters of an image study with the given data.images keys."""
    ratio = images.pop("imbalance_ratio", 1)
    config = validate({"studies": {"s": {"data": {"kind": "images", "imbalance_ratio": ratio, "images": images}}}})
    return next(iter(expand(config)["s"].runs.values())).params["data"]


def synthetic_source(sizes):
    """Return a source whose class c has sizes[c] images filled with the value c / 10 plus noise."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    images = (labels[:, None, None, None] / 10.0 + rng.uniform(0, 0.05, (len(labels), 1, 4, 4))).astype(np.float32)
    return SourceImages(images, labels, [f"c{c}" for c in range(len(sizes))])


REBALANCE = {"mode": "ratio", "n_max": None, "majority": None, "minority": None, "classes": None, "counts": None}


def test_ratio_counts_majority_and_minority():
    counts = rebalanced_counts({**REBALANCE, "majority": [0, 2], "minority": [1, 3]}, 4.0, np.array([100, 90, 80, 70]))
    assert counts.tolist() == [70, 18, 70, 18]  # n_max: the smallest chosen pool; 70 / 4 = 17.5 rounds to 18


def test_ratio_counts_default_halves():
    counts = rebalanced_counts({**REBALANCE, "n_max": 50}, 10.0, np.full(5, 60))
    assert counts.tolist() == [50, 50, 50, 5, 5]


def test_long_tail_counts_follow_profile():
    counts = rebalanced_counts({**REBALANCE, "mode": "long_tail", "n_max": 1000}, 100.0, np.full(5, 2000))
    expected = np.floor(1000 * 100.0 ** (-np.arange(5) / 4) + 0.5)
    assert counts.tolist() == expected.tolist()
    assert counts.tolist() == [1000, 316, 100, 32, 10]


def test_long_tail_default_n_max_fits_pools():
    available = np.array([50, 400, 400, 400])
    counts = rebalanced_counts({**REBALANCE, "mode": "long_tail", "classes": [1, 2, 3, 0]}, 8.0, available)
    assert counts[1] == 400  # head class: rank 0
    assert counts[0] == 50  # rank 3 gets n_max / 8, capped by its pool of 50
    assert (counts <= available).all()


def test_subset_counts_only_chosen_classes():
    counts = rebalanced_counts({**REBALANCE, "mode": "subset", "classes": [1, 3]}, 1.0, np.array([9, 30, 9, 20]))
    assert counts.tolist() == [0, 20, 0, 20]


def test_explicit_counts_taken_as_given():
    counts = rebalanced_counts({**REBALANCE, "mode": "counts", "counts": [5, 0, 7]}, 1.0, np.array([10, 10, 10]))
    assert counts.tolist() == [5, 0, 7]


def test_explicit_counts_wrong_length_rejected():
    with pytest.raises(ValueError, match="has 2 values; the source has 3 classes"):
        rebalanced_counts({**REBALANCE, "mode": "counts", "counts": [5, 0]}, 1.0, np.array([10, 10, 10]))


def test_dataset_counts_exact_and_heldout_disjoint():
    params = image_params(source="digits", imbalance_ratio=10, rebalance={"majority": [0, 1, 2, 3, 4]})
    dataset = make_image_dataset(params)
    counts = np.bincount(dataset.y_train, minlength=10)
    assert counts[:5].tolist() == [87] * 5
    assert counts[5:].tolist() == [9] * 5
    assert np.bincount(dataset.y_heldout, minlength=10).tolist() == counts.tolist()
    assert not set(dataset.train_index) & set(dataset.heldout_index)
    assert dataset.x_train.shape == (480, 64)
    assert dataset.x_train.min() >= -1.0
    assert dataset.x_train.max() <= 1.0
    assert dataset.weights.sum() == pytest.approx(1.0)


def test_selection_seeded_and_nested():
    small = make_image_dataset(image_params(source="digits", imbalance_ratio=10))
    again = make_image_dataset(image_params(source="digits", imbalance_ratio=10))
    large = make_image_dataset(image_params(source="digits", imbalance_ratio=1))
    assert np.array_equal(small.train_index, again.train_index)
    assert set(small.train_index) <= set(large.train_index)


def test_other_data_seed_other_selection():
    first = make_image_dataset(image_params(source="digits", imbalance_ratio=10))
    config = validate({"studies": {"s": {"data": {"kind": "images", "imbalance_ratio": 10, "seed": 1}}}})
    other = make_image_dataset(next(iter(expand(config)["s"].runs.values())).params["data"])
    assert not np.array_equal(first.train_index, other.train_index)


def test_request_beyond_pool_names_class():
    params = image_params(source="parquet", path="in-memory", rebalance={"mode": "counts", "counts": [3, 40, 3]})
    with pytest.raises(ValueError, match=r"class 1 \(c1\): requested 40, the training pool has 10"):
        make_image_dataset(params, synthetic_source([20, 20, 20]))


def test_dataset_file_round_trip(tmp_path):
    dataset = make_image_dataset(image_params(source="digits", imbalance_ratio=4))
    dataset.save(tmp_path / "d.npz")
    loaded = ImageDataset.load(tmp_path / "d.npz")
    assert np.array_equal(loaded.x_train, dataset.x_train)
    assert loaded.class_names.tolist() == [str(c) for c in range(10)]
    assert loaded.train_sha256() == dataset.train_sha256()


def write_parquet(path, string_labels=False):
    import datasets

    rng = np.random.default_rng(1)
    pictures = [Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8)) for _ in range(12)]
    names = ["cat", "dog", "emu"]
    if string_labels:
        label_feature, labels = datasets.Value("string"), [names[i % 3] for i in range(12)]
    else:
        label_feature, labels = datasets.ClassLabel(names=names), [i % 3 for i in range(12)]
    features = datasets.Features({"picture": datasets.Image(), "kind": label_feature})
    datasets.Dataset.from_dict({"picture": pictures, "kind": labels}, features=features).to_parquet(str(path))
    return pictures, labels


@pytest.mark.parametrize("string_labels", [False, True])
def test_parquet_source_loads_through_datasets(tmp_path, string_labels):
    pictures, labels = write_parquet(tmp_path / "faces.parquet", string_labels)
    params = image_params(source="parquet", path=str(tmp_path / "faces.parquet"), image_column="picture", label_column="kind")
    source = load_source(params["images"])
    assert source.images.shape == (12, 1, 6, 6)
    assert source.class_names == ["cat", "dog", "emu"]
    assert source.labels.tolist() == [i % 3 for i in range(12)]
    assert np.allclose(source.images[4, 0], np.asarray(pictures[4], dtype=np.float32) / 255.0)


def test_parquet_missing_column_named(tmp_path):
    write_parquet(tmp_path / "faces.parquet")
    params = image_params(source="parquet", path=str(tmp_path / "faces.parquet"))
    with pytest.raises(ValueError, match="column 'image' not found .* available: picture, kind"):
        load_source(params["images"])


def test_imagefolder_source_loads_subfolders_as_classes(tmp_path):
    rng = np.random.default_rng(2)
    for name in ("ant", "bee"):
        (tmp_path / "folder" / name).mkdir(parents=True)
        for i in range(5):
            colour = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
            Image.fromarray(colour).save(tmp_path / "folder" / name / f"{i}.png")
    params = image_params(source="imagefolder", path=str(tmp_path / "folder"), image_size=8, rebalance={"mode": "subset", "n_max": 2})
    source = load_source(params["images"])
    assert source.images.shape == (10, 3, 8, 8)
    assert source.class_names == ["ant", "bee"]
    assert np.bincount(source.labels).tolist() == [5, 5]
    dataset = make_image_dataset(params, source)
    assert np.bincount(dataset.y_train).tolist() == [2, 2]


def test_missing_fetched_dataset_names_rule():
    params = image_params(source="mnist")
    with pytest.raises(FileNotFoundError, match="fetch_dataset rule"):
        load_source(params["images"])


def test_source_id_readable():
    assert source_id(image_params(source="digits")["images"]) == "digits"
    assert source_id(image_params(source="celeba", attribute="Smiling", image_size=64)["images"]) == "celeba-Smiling-64px"


def test_config_rejects_size_the_unet_cannot_divide():
    config = {"studies": {"s": {"data": {"kind": "images", "images": {"source": "mnist"}}, "model": {"unet": {"block_channels": [8, 8, 8, 8]}}}}}
    with pytest.raises(ConfigError, match="28x28 pixels do not divide by the U-Net's down-sampling factor 8"):
        expand(validate(config))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "images", "n_train": 100}, "data.n_train applies to mixtures only"),
        ({"images": {}}, "data.images is set but data.kind is mixture"),
        ({"kind": "images", "images": {"source": "celeba"}}, "attribute must be set for source celeba"),
        ({"kind": "images", "images": {"source": "parquet"}}, "path must be set for sources parquet and imagefolder"),
        ({"kind": "images", "images": {"rebalance": {"mode": "subset"}}, "imbalance_ratio": 4}, "has no effect in rebalance mode subset"),
        ({"kind": "images", "images": {"rebalance": {"majority": [0, 12]}}}, r"majority names classes \[12\]"),
    ],
)
def test_config_rejects_inconsistent_image_keys(data, message):
    with pytest.raises(ConfigError, match=message):
        expand(validate({"studies": {"s": {"data": data}}}))


def test_padded_unet_trains_28_pixels_with_three_downsamplings(tmp_path):
    run = tiny_image_run(
        data={"images": {"source": "digits", "image_size": 28, "rebalance": {"n_max": 4}}},
        model={"unet": {"block_channels": [8, 8, 8, 8], "pad": True}},
        train={"steps": 3, "checkpoints": 1, "checkpoint_first": 3, "batch_size": 4},
    )
    dataset = make_image_dataset(run.params["data"])
    assert tuple(dataset.image_shape) == (1, 28, 28)
    facts = training.train_run(run.params, dataset, tmp_path, tmp_path / "checkpoints", tmp_path / "log.parquet")
    assert facts["checkpoint_steps"] == [3]
    assert (tmp_path / "checkpoints" / "step_000000003" / "model").is_dir()


def test_padded_unet_keeps_flat_shape():
    model = make_unet({"block_channels": [8, 8, 8, 8], "layers_per_block": 1, "attention": True, "norm_num_groups": 4, "pad": True}, (1, 28, 28))
    assert model.padded == (32, 32)
    output = model(torch.zeros(2, 784), torch.tensor([10]))
    assert output.shape == (2, 784)


def test_unpadded_unet_rejects_indivisible_size():
    with pytest.raises(ValueError, match="set model.unet.pad: true to pad them to 32x32"):
        make_unet({"block_channels": [8, 8, 8, 8], "layers_per_block": 1, "attention": False, "norm_num_groups": 4, "pad": False}, (1, 28, 28))


@pytest.mark.parametrize(("path", "study", "n_runs"), [("config/config.yaml", "digits", 2), ("config/studies/fashion_mnist.yaml", "fashion_mnist", 9)])
def test_shipped_image_studies_valid(path, study, n_runs):
    from pathlib import Path

    from heterodiff.config import load

    studies = expand(load(Path(__file__).resolve().parents[1] / path))
    assert len(studies[study].runs) == n_runs
    assert all(run.params["data"]["kind"] == "images" for run in studies[study].runs.values())


def test_image_run_resumes_to_same_weights(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    run = tiny_image_run(train={"ema_decay": 0.9})
    dataset = make_image_dataset(run.params["data"])

    def train(folder):
        training.train_run(run.params, dataset, folder, folder / "checkpoints", folder / "log.parquet")
        return load_file(folder / "checkpoints" / "step_000000020" / "ema" / "diffusion_pytorch_model.safetensors")

    reference = train(tmp_path / "reference")
    original = training._save_checkpoint

    def crash_on_last_checkpoint(directory, model, ema):
        if directory.name.endswith("20"):
            raise KeyboardInterrupt("simulated kill")
        original(directory, model, ema)

    monkeypatch.setattr(training, "_save_checkpoint", crash_on_last_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "resumed")
    monkeypatch.setattr(training, "_save_checkpoint", original)

    resumed = train(tmp_path / "resumed")
    assert reference.keys() == resumed.keys()
    for name in reference:
        assert torch.equal(reference[name], resumed[name]), name
