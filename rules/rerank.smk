rule rerank_shard:
    input:
        unpack(rerank_inputs),
        candidates=rules.extract.output.candidates,
        queries=rules.extract.output.queries,
        videos=rules.extract.output.videos,
    output:
        scores="results/rerank/shards/{system}/{shard}.jsonl",
    log:
        "logs/rerank/shards/{system}/{shard}.log",
    benchmark:
        "benchmarks/rerank/shards/{system}/{shard}.tsv"
    wildcard_constraints:
        system=_one_of(MODEL_SYSTEMS),
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=lambda wildcards: system_mem_mb(wildcards.system),
        runtime=240,
        gpu=lambda wildcards: system_gpus(wildcards.system),
    params:
        engine=engine("rerank"),
        shards=len(SHARDS),
        scorer=lambda wildcards: system_scorer(wildcards.system),
        frame_cache=frame_cache,
    script:
        "../scripts/rerank.py"


rule rerank_merge:
    input:
        shards=expand(
            rules.rerank_shard.output.scores, shard=SHARDS, allow_missing=True
        ),
        candidates=CANDIDATES,
        first_stage=FIRST_STAGE,
    output:
        scores="results/rerank/{retriever}/{system}.jsonl",
        run="results/rerank/{retriever}/{system}.run",
    log:
        "logs/rerank/{retriever}/{system}.log",
    benchmark:
        "benchmarks/rerank/{retriever}/{system}.tsv"
    wildcard_constraints:
        system=_one_of(MODEL_SYSTEMS),
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        depth=config["rerank"]["depth"],
    script:
        "../scripts/rerank_merge.py"


# A system of scores from elsewhere (rerank.models.<name>.file): read strictly against the
# candidate map, in place of the scoring jobs and their merge.
rule rerank_file:
    input:
        scores=score_file,
        candidates=CANDIDATES,
        first_stage=FIRST_STAGE,
        others=other_candidate_maps,
    output:
        scores="results/rerank/{retriever}/{system}.jsonl",
        run="results/rerank/{retriever}/{system}.run",
    log:
        "logs/rerank/{retriever}/{system}.log",
    benchmark:
        "benchmarks/rerank/{retriever}/{system}.tsv"
    wildcard_constraints:
        system=_one_of(FILE_SYSTEMS),
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        depth=config["rerank"]["depth"],
    script:
        "../scripts/rerank_file.py"
