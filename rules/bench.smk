rule bench:
    input:
        model=model_input(config["models"]["vlm"]),
    output:
        table="results/bench/scoring.tsv",
        plot="results/bench/scoring.png",
    log:
        "logs/bench/scoring.log",
    benchmark:
        "benchmarks/bench/scoring.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=model_mem_mb(config["models"]["vlm"]),
        runtime=60,
        gpu=model_gpus(config["models"]["vlm"]),
    params:
        model=lambda wildcards: model_path(config["models"]["vlm"]),
        settings=bench_settings(),
    script:
        "../scripts/bench.py"
