rule teacher_shard:
    input:
        candidates=rules.extract.output.train_candidates,
        queries=rules.extract.output.queries,
        captions=rules.captions_merge.output.merged,
        model=model_input(config["models"]["teacher"]),
    output:
        labels="results/teacher/shards/{shard}.jsonl",
    log:
        "logs/teacher/shards/{shard}.log",
    benchmark:
        "benchmarks/teacher/shards/{shard}.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=model_mem_mb(config["models"]["teacher"]),
        runtime=240,
        gpu=model_gpus(config["models"]["teacher"]),
    params:
        engine=engine("teacher"),
        model=lambda wildcards: model_path(config["models"]["teacher"]),
        shards=config["teacher"]["shards"],
        settings=teacher_settings(),
        asr=config["data"]["asr"],
    script:
        "../scripts/teacher.py"


rule teacher_merge:
    input:
        shards=expand(
            rules.teacher_shard.output.labels, shard=range(config["teacher"]["shards"])
        ),
    output:
        merged="results/teacher/labels.jsonl",
    log:
        "logs/teacher/labels.log",
    benchmark:
        "benchmarks/teacher/labels.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        key=["query_id", "doc_id"],
    script:
        "../scripts/merge.py"
