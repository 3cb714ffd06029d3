from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/image_common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/classifier.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/image_figures.smk"


# CPU-only steps run where Snakemake runs: Berzelius cancels jobs on GPU nodes that hold no GPU.
localrules:
    all,
    make_dataset,
    aggregate,
    figures,


rule all:
    default_target: True
    input:
        get_final_outputs(),
        get_image_outputs(),
