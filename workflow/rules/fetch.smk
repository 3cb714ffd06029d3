# The only rule that downloads: run it on a machine with internet, then copy resources/ to the others.
localrules:
    fetch_dataset,


rule fetch_dataset:
    output:
        dataset="resources/datasets/{fetch_name}/data.parquet",
    log:
        "resources/logs/fetch_dataset/{fetch_name}.log",
    conda:
        "../../envs/heterodiff.yaml"
    params:
        source=get_fetch_params,
    script:
        "../scripts/fetch_dataset.py"
