rule demo_data:
    output:
        archive="resources/demo/data.tar.gz",
    log:
        "logs/demo_data.log",
    benchmark:
        "benchmarks/demo_data.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=lambda wildcards: {"seed": config["seed"], **config["demo"]},
    script:
        "../scripts/demo_data.py"
