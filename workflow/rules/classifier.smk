rule train_classifier:
    input:
        source=get_classifier_source_files,
    output:
        model="results/{study}/classifiers/{source_id}/classifier.pt",
        reference="results/{study}/classifiers/{source_id}/reference.npz",
        spec="results/{study}/classifiers/{source_id}/classifier.yaml",
    log:
        "results/{study}/logs/train_classifier/{source_id}.log",
    benchmark:
        "results/{study}/benchmarks/train_classifier/{source_id}.tsv"
    conda:
        "../../envs/heterodiff.yaml"
    threads: 1
    params:
        classifier=get_classifier_params,
    script:
        "../scripts/train_classifier.py"
