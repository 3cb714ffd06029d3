rule train:
    input:
        dataset=get_dataset,
    output:
        checkpoints=directory("results/{study}/runs/{run_id}/checkpoints"),
        train_log="results/{study}/runs/{run_id}/train_log.parquet",
        spec="results/{study}/runs/{run_id}/spec.yaml",
    log:
        "results/{study}/logs/train/{run_id}.log",
    benchmark:
        "results/{study}/benchmarks/train/{run_id}.tsv"
    conda:
        "../../envs/heterodiff.yaml"
    threads: 1
    params:
        run=get_run_params,
    script:
        "../scripts/train.py"
