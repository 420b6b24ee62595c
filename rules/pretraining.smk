rule pretraining_world:
    output:
        world=directory("resources/demo/pretraining"),
    log:
        "logs/pretraining_world.log",
    benchmark:
        "benchmarks/pretraining_world.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=lambda wildcards: {"seed": config["seed"], **config["demo"]},
    script:
        "../scripts/pretraining.py"
