"""Snakemake adapter for rule train_classifier: train the classifier of one source dataset."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import image_steps, runtime

runtime.setup_logging(snakemake.log[0])
image_steps.train_classifier(
    snakemake.params.classifier["images"],
    snakemake.params.classifier["classifier"],
    snakemake.output.model,
    snakemake.output.reference,
    snakemake.output.spec,
    snakemake.threads,
)
