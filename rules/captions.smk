rule captions_shard:
    input:
        candidates=rules.extract.output.candidates,
        train_candidates=rules.extract.output.train_candidates,
        qrels=rules.extract.output.qrels,
        train=rules.extract.output.train,
        videos=rules.extract.output.videos,
        model=model_input(config["models"]["captioner"]),
    output:
        captions="results/captions/shards/{shard}.jsonl",
    log:
        "logs/captions/shards/{shard}.log",
    benchmark:
        "benchmarks/captions/shards/{shard}.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=model_mem_mb(config["models"]["captioner"]),
        runtime=240,
        gpu=model_gpus(config["models"]["captioner"]),
    params:
        engine=engine("captions"),
        model=lambda wildcards: model_path(config["models"]["captioner"]),
        shards=config["captions"]["shards"],
        video=caption_video_settings(),
        frame_cache=frame_cache,
        settings={
            "prompt": config["captions"]["prompt"],
            "max_new_tokens": config["captions"]["max_new_tokens"],
            "batch_size": config["captions"]["batch_size"],
            "device": config["rerank"]["device"],
            "dtype": config["rerank"]["dtype"],
        },
    script:
        "../scripts/captions.py"


rule captions_merge:
    input:
        shards=expand(
            rules.captions_shard.output.captions,
            shard=range(config["captions"]["shards"]),
        ),
    output:
        merged="results/captions/captions.jsonl",
    log:
        "logs/captions/captions.log",
    benchmark:
        "benchmarks/captions/captions.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        key=["doc_id"],
    script:
        "../scripts/merge.py"
