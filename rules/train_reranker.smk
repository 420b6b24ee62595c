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
        settings=lambda wildcards, input, output: stage_settings("stage2")
        | {
            "model": input.model,
            "train_data": input.ranking,
            "template": config["prompt"]["template"],
            "output_dir": output.model,
            "log": output.log,
            "work_dir": "results/stage2/work",
        },
        processes=config["stage2"]["processes"],
    script:
        "../scripts/train_reranker.py"
