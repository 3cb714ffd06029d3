# Helpers of image studies: which studies use images, the source files, classifier jobs and outputs.
from heterodiff import image_config, image_sources

try:
    CLASSIFIERS = image_config.classifier_jobs(STUDIES)
    IMAGE_STUDIES = image_config.image_studies(STUDIES)
except ConfigError as error:
    raise WorkflowError(str(error)) from None


wildcard_constraints:
    source_id="[^/]+",
    fetch_name="|".join(image_sources.HUB_DATASETS) + "|celeba-[A-Za-z0-9_]+",


def get_mixture_studies():
    return [study for study in STUDIES if study not in IMAGE_STUDIES]


def get_image_pattern():
    """Return the wildcard pattern of image study names, one that matches nothing when there are none."""
    return "|".join(IMAGE_STUDIES) or "no-image-study"


def get_source_files(wildcards):
    """Return the files a dataset is read from: none for mixtures and digits, else the fetched or local file."""
    params = get_data_params(wildcards)
    if params["kind"] != "images":
        return []
    return get_existing_source_files(params["images"])


def get_existing_source_files(images):
    files = image_sources.source_files(images)
    if images["source"] in image_sources.LOCAL_SOURCES and not Path(files[0]).exists():
        raise WorkflowError(
            f"data.images.path {files[0]} not found; no rule writes it, so point the key at an existing "
            f"{images['source']} dataset"
        )
    return files


def get_classifier_id(run):
    return image_sources.source_id(run.params["data"]["images"])


def get_classifier(wildcards):
    """Return the classifier of an image run (an evaluate input), or no file for a mixture run."""
    run = get_run(wildcards)
    if run.params["data"]["kind"] != "images":
        return []
    return f"results/{run.study}/classifiers/{get_classifier_id(run)}/classifier.pt"


def get_classifier_params(wildcards):
    return CLASSIFIERS[(wildcards.study, wildcards.source_id)]


def get_classifier_source_files(wildcards):
    return get_existing_source_files(get_classifier_params(wildcards)["images"])


def get_fetch_params(wildcards):
    name, _, attribute = wildcards.fetch_name.partition("-")
    return {"name": name, "attribute": attribute or None}


def get_image_outputs():
    outputs = []
    for study in IMAGE_STUDIES:
        outputs += [
            f"results/{study}/figures/{name}.png"
            for name in (
                "memorisation",
                "class_share",
                "precision_recall",
                "frechet_distance",
                "loss",
            )
        ]
        outputs += [
            f"results/{study}/figures/samples/{run_id}.png"
            for run_id in STUDIES[study].runs
        ]
    return outputs
