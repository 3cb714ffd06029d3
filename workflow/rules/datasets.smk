rule make_dataset:
    input:
        source=get_source_files,
    output:
        dataset="results/{study}/datasets/{data_id}.npz",
    log:
        "results/{study}/logs/make_dataset/{data_id}.log",
    conda:
        "../../envs/heterodiff.yaml"
    params:
        data=get_data_params,
    script:
        "../scripts/make_dataset.py"
