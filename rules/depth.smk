# The rerank shards' benchmark files are inputs: a benchmark file is one of the products
# of its rule, so Snakemake plans the shard that writes it (a missing one reruns that shard).
rule depth:
    input:
        qrels=rules.extract.output.qrels,
        eval_queries=rules.extract.output.eval,
        first_stage=rules.extract.output.first_stage,
        reranked=rules.evaluate.input.reranked,
        benchmarks=expand(
            rules.rerank_shard.benchmark, system=MODEL_SYSTEMS, shard=SHARDS
        ),
    output:
        table=report(
            "results/eval/depth.tsv",
            caption="../report/depth.rst",
            category="Evaluation",
        ),
        plot=report(
            "results/plots/depth.png",
            caption="../report/depth.rst",
            category="Evaluation",
        ),
    log:
        "logs/eval/depth.log",
    benchmark:
        "benchmarks/eval/depth.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        retrievers=RETRIEVERS,
        systems=SYSTEMS,
        scored_systems=MODEL_SYSTEMS,
        depth=config["rerank"]["depth"],
        score_field=config["evaluate"]["score_field"],
    script:
        "../scripts/depth.py"
