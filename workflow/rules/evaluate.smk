rule evaluate:
    input:
        dataset=get_dataset,
        checkpoints="results/{study}/runs/{run_id}/checkpoints",
        classifier=get_classifier,
    output:
        metrics="results/{study}/runs/{run_id}/metrics.parquet",
        samples="results/{study}/runs/{run_id}/samples.npz",
        tracking="results/{study}/runs/{run_id}/tracking.parquet",
        trajectories="results/{study}/runs/{run_id}/trajectories.parquet",
        spec="results/{study}/runs/{run_id}/evaluate.yaml",
    log:
        "results/{study}/logs/evaluate/{run_id}.log",
    benchmark:
        "results/{study}/benchmarks/evaluate/{run_id}.tsv"
    conda:
        "../../envs/heterodiff.yaml"
    threads: 1
    params:
        sections=get_evaluate_params,
    script:
        "../scripts/evaluate.py"
