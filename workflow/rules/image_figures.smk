# Image studies write memorisation.png and loss.png under the same names as mixture studies; this rule
# draws them for image studies only, and the ruleorder settles the overlap with rule figures.
localrules:
    image_figures,
    sample_grid,


ruleorder: image_figures > figures


rule image_figures:
    input:
        runs="results/{study}/tables/runs.parquet",
        metrics="results/{study}/tables/metrics.parquet",
        train_log="results/{study}/tables/train_log.parquet",
    output:
        memorisation=report(
            "results/{study}/figures/memorisation.png",
            caption="../report/memorisation.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "memorised fraction"},
        ),
        class_share=report(
            "results/{study}/figures/class_share.png",
            caption="../report/image_class_share.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "class share"},
        ),
        precision_recall=report(
            "results/{study}/figures/precision_recall.png",
            caption="../report/precision_recall.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "precision and recall"},
        ),
        frechet_distance=report(
            "results/{study}/figures/frechet_distance.png",
            caption="../report/frechet_distance.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "Fréchet distance"},
        ),
        loss=report(
            "results/{study}/figures/loss.png",
            caption="../report/loss.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "training loss"},
        ),
    log:
        "results/{study}/logs/image_figures.log",
    wildcard_constraints:
        study=get_image_pattern(),
    conda:
        "../../envs/heterodiff.yaml"
    script:
        "../scripts/image_figures.py"


rule sample_grid:
    input:
        samples="results/{study}/runs/{run_id}/samples.npz",
        dataset=get_dataset,
    output:
        grid=report(
            "results/{study}/figures/samples/{run_id}.png",
            caption="../report/sample_grid.rst",
            category="{study}",
            subcategory="samples",
            labels={"study": "{study}", "run": "{run_id}"},
        ),
    log:
        "results/{study}/logs/sample_grid/{run_id}.log",
    wildcard_constraints:
        study=get_image_pattern(),
    conda:
        "../../envs/heterodiff.yaml"
    params:
        evaluate=get_evaluate_section,
    script:
        "../scripts/sample_grid.py"
