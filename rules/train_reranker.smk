rule train_reranker:
    input:
        ranking=rules.training_data.output.ranking,
        model=rules.train_perception.output.model,
    output:
        model=directory("results/stage2/model"),
        log="results/stage2/train_log.tsv",
    log:
        "logs/stage2/train_reranker.log",
    benchmark:
        "benchmarks/stage2/train_reranker.tsv"
    conda:
        "../environment.yml"
    threads: config["stage2"]["processes"] * config["stage2"]["threads"]
    resources:
        mem_mb=model_mem_mb(config["models"]["vlm"], config["stage2"]["processes"]),
        runtime=1440,
        gpu=model_gpus(config["models"]["vlm"], config["stage2"]["processes"]),
    params:
        settings=reranker_settings,
        stage=reranker_stage,
        template=config["prompt"]["template"],
        processes=config["stage2"]["processes"],
    script:
        "../scripts/train_reranker.py"


# The same training with the losses an ablation changes (ABLATIONS in common.smk), so
# the table shows what each term brings (rankvideo_no_distill: without the teacher).
use rule train_reranker as train_reranker_ablation with:
    output:
        model=directory("results/ablations/{ablation}/model"),
        log="results/ablations/{ablation}/train_log.tsv",
    log:
        "logs/ablations/{ablation}/train_reranker.log",
    benchmark:
        "benchmarks/ablations/{ablation}/train_reranker.tsv"
