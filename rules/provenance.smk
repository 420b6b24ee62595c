rule provenance:
    input:
        unpack(provenance_inputs),
    output:
        config=report(
            "results/provenance/config.yaml",
            caption="../report/provenance_config.rst",
            category="Provenance",
        ),
        table=report(
            "results/provenance/provenance.tsv",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        "logs/provenance/provenance.log",
    benchmark:
        "benchmarks/provenance/provenance.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        config=config,
        models=lambda wildcards, input: provenance_models(),
        workflow_dir=workflow.basedir,
    script:
        "../scripts/provenance.py"
