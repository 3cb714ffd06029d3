rule figures:
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
            caption="../report/class_share.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "class share"},
        ),
        mean_error=report(
            "results/{study}/figures/mean_error.png",
            caption="../report/mean_error.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "class-mean error"},
        ),
        loss=report(
            "results/{study}/figures/loss.png",
            caption="../report/loss.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "training loss"},
        ),
    log:
        "results/{study}/logs/figures.log",
    conda:
        "../../envs/heterodiff.yaml"
    script:
        "../scripts/figures.py"
