rule tiny_models:
    input:
        unpack(tiny_inputs),
    output:
        model=directory("resources/models/{name}"),
    log:
        "logs/tiny_models/{name}.log",
    benchmark:
        "benchmarks/tiny_models/{name}.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        spec=lambda wildcards: tiny_spec(wildcards.name),
        seed=config["seed"],
        pretraining=lambda wildcards: tiny_pretraining(wildcards.name),
    script:
        "../scripts/tiny_models.py"
