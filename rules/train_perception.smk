rule train_perception:
    input:
        captions=rules.training_data.output.captions,
        model=model_input(config["models"]["vlm"]),
    output:
        model=directory("results/stage1/model"),
        log="results/stage1/train_log.tsv",
    log:
        "logs/stage1/train_perception.log",
    benchmark:
        "benchmarks/stage1/train_perception.tsv"
    conda:
        "../environment.yml"
    threads: config["stage1"]["processes"] * config["stage1"]["threads"]
    resources:
        mem_mb=model_mem_mb(config["models"]["vlm"], config["stage1"]["processes"]),
        runtime=1440,
        gpu=model_gpus(config["models"]["vlm"], config["stage1"]["processes"]),
    params:
        settings=lambda wildcards, input, output: stage_settings("stage1")
        | {
            "video": video_settings() | frame_cache(wildcards, input, output),
            "model": model_path(config["models"]["vlm"]),
            "train_data": input.captions,
            "output_dir": output.model,
            "log": output.log,
            "work_dir": "results/stage1/work",
        },
        # compared between runs (params derived from input or output are not)
        stage=stage_settings("stage1"),
        processes=config["stage1"]["processes"],
    script:
        "../scripts/train_perception.py"
