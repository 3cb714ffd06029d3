"""Configuration rules of image studies that a JSON schema cannot express."""

from __future__ import annotations

from typing import Callable

from heterodiff.image_sources import LOCAL_SOURCES, NATIVE_SIZES, source_id

# Sub-sections that only image studies have, as (section, key, schema definition).
IMAGE_SUBSECTIONS = (("data", "images", "image_data"), ("model", "unet", "unet"), ("evaluate", "images", "image_evaluate"))
# Mixture keys that image studies ignore, so setting them is a mistake.
MIXTURE_ONLY = {
    "data": ("n_classes", "dim", "variance", "geometry", "centroid_distance", "centroid_norm", "means", "imbalance_profile", "weights", "n_train", "n_heldout"),
    "model": ("width", "depth", "time_embedding_dim"),
}
# Classes of the built-in sources, to check class labels before any job starts.
SOURCE_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "celeba": 2}


def downsampling_factor(block_channels: list[int]) -> int:
    """Return how much the U-Net shrinks an image: each block but the last halves height and width."""
    return 2 ** (len(block_channels) - 1)


def padded_size(size: int, factor: int) -> int:
    return -(-size // factor) * factor


def size_problem(height: int, width: int, unet: dict) -> str | None:
    """Describe why an image size does not fit the U-Net's down-sampling, or return None when it fits.

    With unet.pad true every size fits, because the model pads its input to the next multiple.
    """
    factor = downsampling_factor(unet["block_channels"])
    if unet["pad"] or (height % factor == 0 and width % factor == 0):
        return None
    return (
        f"images of {height}x{width} pixels do not divide by the U-Net's down-sampling factor {factor} "
        f"({len(unet['block_channels'])} blocks in model.unet.block_channels); set model.unet.pad: true to pad "
        f"them to {padded_size(height, factor)}x{padded_size(width, factor)}, set data.images.image_size to a "
        f"multiple of {factor}, or use fewer blocks"
    )


def fill_defaults(params: dict, schema: dict, prepare: Callable) -> dict:
    """Add the image sub-sections with their defaults to an image study that leaves them out."""
    if params["data"]["kind"] != "images":
        return params
    for section, key, definition in IMAGE_SUBSECTIONS:
        if key not in params[section]:
            params[section][key] = prepare({}, {"$ref": f"#/$defs/{definition}"}, schema)
    return params


def _mixture_problems(name: str, params: dict, schema: dict) -> list[str]:
    problems = []
    for section, key, _ in IMAGE_SUBSECTIONS:
        if params[section].get(key) is not None:
            problems.append(f"studies.{name}.{section}.{key} is set but data.kind is mixture; set data.kind: images")
    return problems


def _image_problems(name: str, params: dict, schema: dict) -> list[str]:
    data, images, unet = params["data"], params["data"]["images"], params["model"]["unet"]
    prefix = f"studies.{name}.data.images"
    problems = []
    for section, keys in MIXTURE_ONLY.items():
        properties = schema["$defs"][section]["properties"]
        for key in keys:
            if params[section][key] != properties[key].get("default"):
                problems.append(f"studies.{name}.{section}.{key} applies to mixtures only; remove it from this image study")

    source = images["source"]
    if (source in LOCAL_SOURCES) != (images["path"] is not None):
        problems.append(f"{prefix}.path must be set for sources parquet and imagefolder, and only for them (source: {source})")
    if (source == "celeba") != (images["attribute"] is not None):
        problems.append(f"{prefix}.attribute must be set for source celeba, and only for it (source: {source})")

    rebalance = images["rebalance"]
    mode = rebalance["mode"]
    if (mode == "counts") != (rebalance["counts"] is not None):
        problems.append(f"{prefix}.rebalance.counts must be set for mode counts, and only for it (mode: {mode})")
    if mode not in ("ratio", "long_tail") and data["imbalance_ratio"] != 1:
        problems.append(f"studies.{name}.data.imbalance_ratio = {data['imbalance_ratio']} has no effect in rebalance mode {mode}; leave it at 1")
    if mode != "ratio" and (rebalance["majority"] is not None or rebalance["minority"] is not None):
        problems.append(f"{prefix}.rebalance.majority and minority apply to mode ratio only (mode: {mode})")
    if mode not in ("subset", "long_tail") and rebalance["classes"] is not None:
        problems.append(f"{prefix}.rebalance.classes applies to modes subset and long_tail only (mode: {mode})")
    if mode == "ratio" and rebalance["majority"] and rebalance["minority"] and set(rebalance["majority"]) & set(rebalance["minority"]):
        problems.append(f"{prefix}.rebalance: classes {sorted(set(rebalance['majority']) & set(rebalance['minority']))} are in both majority and minority")
    n_classes = SOURCE_CLASSES.get(source)
    if n_classes is not None:
        for key in ("majority", "minority", "classes"):
            outside = [c for c in rebalance[key] or [] if c >= n_classes]
            if outside:
                problems.append(f"{prefix}.rebalance.{key} names classes {outside}; {source} has classes 0 to {n_classes - 1}")
        if rebalance["counts"] is not None and len(rebalance["counts"]) != n_classes:
            problems.append(f"{prefix}.rebalance.counts has {len(rebalance['counts'])} values; {source} has {n_classes} classes")

    bad_groups = [c for c in unet["block_channels"] if c % unet["norm_num_groups"]]
    if bad_groups:
        problems.append(f"studies.{name}.model.unet.norm_num_groups = {unet['norm_num_groups']} does not divide block_channels {bad_groups}")
    size = (images["image_size"], images["image_size"]) if images["image_size"] is not None else NATIVE_SIZES.get(source)
    if size is not None:
        problem = size_problem(*size, unet)
        if problem is not None:
            problems.append(f"studies.{name}.model.unet: {problem}")
    return problems


def problems(name: str, params: dict, schema: dict) -> list[str]:
    """Return the image-specific problems of one grid point (and the image keys a mixture study must not set)."""
    if params["data"]["kind"] == "images":
        return _image_problems(name, params, schema)
    return _mixture_problems(name, params, schema)


def classifier_jobs(studies: dict) -> dict[tuple[str, str], dict]:
    """Return the classifier parameters of every (study, source id), checking that the runs agree on them.

    A study trains one classifier per source dataset. Runs of a grid that differ in the classifier keys
    would each need their own, so that is rejected.
    """
    from heterodiff.config import ConfigError

    jobs: dict[tuple[str, str], dict] = {}
    for study in studies.values():
        for run in study.runs.values():
            if run.params["data"]["kind"] != "images":
                continue
            key = (study.name, source_id(run.params["data"]["images"]))
            # The classifier is trained on the whole source, so the keys that choose the training subset do not matter.
            images = {k: v for k, v in run.params["data"]["images"].items() if k not in ("rebalance", "heldout_fraction")}
            job = {"images": images, "classifier": run.params["evaluate"]["images"]["classifier"]}
            if jobs.setdefault(key, job) != job:
                raise ConfigError(
                    f"studies.{study.name}: runs on source {key[1]} differ in evaluate.images.classifier; "
                    f"one classifier is trained per source, so keep those keys off the grid"
                )
    return jobs


def image_studies(studies: dict) -> list[str]:
    """Return the names of the studies on images; a study must not mix data kinds across its grid."""
    from heterodiff.config import ConfigError

    names = []
    for study in studies.values():
        kinds = {run.params["data"]["kind"] for run in study.runs.values()}
        if len(kinds) > 1:
            raise ConfigError(f"studies.{study.name}: data.kind takes the values {sorted(kinds)}; one study uses one data kind")
        if kinds == {"images"}:
            names.append(study.name)
    return names
