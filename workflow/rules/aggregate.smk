rule aggregate:
    input:
        specs=get_run_files("spec.yaml"),
        evaluate_specs=get_run_files("evaluate.yaml"),
        metrics=get_run_files("metrics.parquet"),
        train_logs=get_run_files("train_log.parquet"),
    output:
        runs="results/{study}/tables/runs.parquet",
        metrics="results/{study}/tables/metrics.parquet",
        train_log="results/{study}/tables/train_log.parquet",
    log:
        "results/{study}/logs/aggregate.log",
    conda:
        "../../envs/heterodiff.yaml"
    script:
        "../scripts/aggregate.py"
