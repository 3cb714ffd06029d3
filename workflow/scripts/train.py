"""Snakemake adapter for rule train: train one run."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import runtime, steps

runtime.setup_logging(snakemake.log[0])
steps.train(
    snakemake.params.run,
    snakemake.input.dataset,
    snakemake.output.checkpoints,
    snakemake.output.train_log,
    snakemake.output.spec,
    snakemake.threads,
)
