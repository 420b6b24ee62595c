rule evaluate:
    input:
        qrels=rules.extract.output.qrels,
        eval_queries=rules.extract.output.eval,
        first_stage=rules.extract.output.first_stage,
        reranked=expand(
            rules.rerank_merge.output.scores, retriever=RETRIEVERS, system=SYSTEMS
        ),
    output:
        table=report(
            "results/eval/ndcg.tsv",
            caption="../report/ndcg.rst",
            category="Evaluation",
        ),
        per_query=report(
            "results/eval/per_query.tsv",
            caption="../report/per_query.rst",
            category="Evaluation",
        ),
    log:
        "logs/eval/ndcg.log",
    benchmark:
        "benchmarks/eval/ndcg.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        retrievers=RETRIEVERS,
        systems=SYSTEMS,
        depth=config["rerank"]["depth"],
        score_field=config["evaluate"]["score_field"],
    script:
        "../scripts/evaluate.py"
