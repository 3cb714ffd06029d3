"""Snakemake adapter for rule fetch_dataset: download one public dataset into resources/."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # the heterodiff package lives next to this folder

from heterodiff import image_steps, runtime

runtime.setup_logging(snakemake.log[0])
image_steps.fetch_dataset(snakemake.params.source["name"], snakemake.params.source["attribute"], snakemake.output.dataset)
