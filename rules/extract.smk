rule extract:
    input:
        unpack(extract_inputs),
    output:
        queries="results/data/queries.tsv",
        qrels="results/data/qrels.txt",
        train="results/data/splits/train.txt",
        eval="results/data/splits/eval.txt",
        videos="results/data/videos.tsv",
        first_stage=expand(FIRST_STAGE, retriever=RETRIEVERS),
        candidates=expand(CANDIDATES, retriever=RETRIEVERS),
        train_candidates="results/data/train_candidates.json",
        training_data="results/data/training_data.jsonl",
        reference_captions="results/data/reference_captions.jsonl",
    log:
        "logs/extract.log",
    benchmark:
        "benchmarks/extract.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        data=config["data"],
        depth=config["rerank"]["depth"],
        train_depth=config["teacher"]["topk"],
        train_retriever=config["teacher"]["retriever"],
        judged_positives=config["teacher"]["judged_positives"],
        video_backend=config["video"]["backend"],
        # the release's training records (and their videos) only when training on them
        released=config["training_data"] == "archive",
        folder=subpath(output.queries, parent=True),
    script:
        "../scripts/extract.py"
