rule training_data:
    input:
        unpack(training_data_inputs),
    output:
        ranking="results/train/ranking.jsonl",
        captions="results/train/captions.jsonl",
        counts="results/train/query_counts.tsv",
    log:
        "logs/train/training_data.log",
    benchmark:
        "benchmarks/train/training_data.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        mode=config["training_data"],
        stage1_captions=config["stage1"]["captions"],
    script:
        "../scripts/training_data.py"
