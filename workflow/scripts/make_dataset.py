"""Snakemake adapter for rule make_dataset: draw one dataset."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import runtime, steps

runtime.setup_logging(snakemake.log[0])
steps.make_dataset(snakemake.params.data, snakemake.output.dataset)
