rule figures:
    input:
        runs="results/{study}/tables/runs.parquet",
        metrics="results/{study}/tables/metrics.parquet",
        train_log="results/{study}/tables/train_log.parquet",
        timescales="results/{study}/tables/timescales.parquet",
        trajectories="results/{study}/tables/trajectories.parquet",
        copies="results/{study}/tables/copies.parquet",
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
        timescales=report(
            "results/{study}/figures/timescales.png",
            caption="../report/timescales.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "time scales"},
        ),
        tau_mem_vs_n=report(
            "results/{study}/figures/tau_mem_vs_n.png",
            caption="../report/tau_mem_vs_n.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "tau_mem against n"},
        ),
        learning_order=report(
            "results/{study}/figures/learning_order.png",
            caption="../report/learning_order.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "learning order"},
        ),
        score_errors=report(
            "results/{study}/figures/score_errors.png",
            caption="../report/score_errors.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "score errors"},
        ),
        reverse_times=report(
            "results/{study}/figures/reverse_times.png",
            caption="../report/reverse_times.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "speciation and collapse"},
        ),
        copy_order=report(
            "results/{study}/figures/copy_order.png",
            caption="../report/copy_order.rst",
            category="{study}",
            labels={"study": "{study}", "figure": "order of memorisation"},
        ),
    log:
        "results/{study}/logs/figures.log",
    conda:
        "../../envs/heterodiff.yaml"
    script:
        "../scripts/figures.py"
