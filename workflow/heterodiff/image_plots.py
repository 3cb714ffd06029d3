"""Figures of image studies: classifier-based metrics against step, and sample grids with nearest neighbours."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from heterodiff.plots import SEED_BAND, _class_label, _facets, _finish, _with_run_columns  # noqa: E402


def _lines(metrics: pd.DataFrame, runs: pd.DataFrame, names: list[str], **extra) -> sns.FacetGrid:
    selected = _class_label(_with_run_columns(metrics[metrics["metric"].isin(names)], runs))

    # Ten or more classes exhaust seaborn's default palette, so "all" is drawn in black on its own.
    classes = sorted((label for label in selected["class"].unique() if label != "all"), key=lambda label: int(label.split()[1]))
    palette = dict(zip(classes, sns.color_palette("tab20" if len(classes) > 10 else "tab10", len(classes))))
    order = classes + (["all"] if (selected["class"] == "all").any() else [])
    return sns.relplot(
        data=selected, x="step", y="value", hue="class", hue_order=order, palette={**palette, "all": "black"},
        kind="line", errorbar=SEED_BAND, height=3, aspect=1.2, facet_kws={"margin_titles": True}, **_facets(runs), **extra,
    )


def plot_class_share(metrics: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Plot the share of generated samples the classifier assigns to each class against step."""
    grid = _lines(metrics, runs, ["class_share"])
    grid.set_axis_labels("training step", "class share (classifier)")
    _finish(grid, path, "Class share of generated samples; compare with runs.class_weights")


def plot_precision_recall(metrics: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    """Plot per-class precision (solid) and recall (dashed) against step."""
    grid = _lines(metrics, runs, ["precision", "recall"], style="metric", style_order=["precision", "recall"])
    grid.set_axis_labels("training step", "k-NN precision / recall")
    _finish(grid, path, "Per-class precision and recall in the classifier's feature space")


def plot_frechet_distance(metrics: pd.DataFrame, runs: pd.DataFrame, path: str | Path) -> None:
    grid = _lines(metrics, runs, ["frechet_distance"])
    grid.set_axis_labels("training step", "Fréchet distance (classifier features)")
    _finish(grid, path, "Per-class Fréchet distance to the source images of the class", log_y=True)


def _as_picture(row: np.ndarray, image_shape) -> np.ndarray:
    """Turn a flat row in [-1, 1] into an image in [0, 1] that imshow accepts (H x W or H x W x 3)."""
    channels, height, width = (int(s) for s in image_shape)
    picture = (np.clip(row, -1.0, 1.0).reshape(channels, height, width) + 1.0) / 2.0
    return picture[0] if channels == 1 else picture.transpose(1, 2, 0)


def plot_sample_grid(saved: dict, dataset, evaluate: dict, run_id: str, path: str | Path) -> None:
    """Draw, for every checkpoint, the first generated samples each beside its nearest training image.

    Memorised samples (d1/d2 below evaluate.memorisation_ratio) get a red frame on both images.
    """
    samples_per_row = min(evaluate["images"]["grid_samples"], saved["samples"].shape[1])
    steps = saved["steps"]
    figure, axes = plt.subplots(len(steps), 2 * samples_per_row, figsize=(2 * samples_per_row * 0.8, len(steps) * 0.9), squeeze=False)
    cmap = "gray" if int(dataset.image_shape[0]) == 1 else None
    for row, step in enumerate(steps):
        for column in range(samples_per_row):
            memorised = saved["ratio_train"][row, column] < evaluate["memorisation_ratio"]
            pair = (saved["samples"][row, column], dataset.x_train[saved["nearest_train"][row, column]])
            for offset, image in enumerate(pair):
                ax = axes[row, 2 * column + offset]
                ax.imshow(_as_picture(image, dataset.image_shape), cmap=cmap, vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_color("red" if memorised else "lightgrey")
                    spine.set_linewidth(2.5 if memorised else 0.5)
        axes[row, 0].set_ylabel(f"step {step}", rotation=0, ha="right", va="center", fontsize=8)
    for column in range(samples_per_row):
        axes[0, 2 * column].set_title("sample", fontsize=7)
        axes[0, 2 * column + 1].set_title("nearest", fontsize=7)
    figure.suptitle(f"{run_id}: generated samples beside their nearest training image; red frame: memorised", fontsize=9, y=1.04)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
