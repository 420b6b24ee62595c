rule plots:
    input:
        table=rules.evaluate.output.table,
        per_query=rules.evaluate.output.per_query,
        reranked=rules.evaluate.input.reranked,
    output:
        ndcg="results/plots/ndcg.png",
        per_query_delta=report(
            "results/plots/per_query_delta.png",
            caption="../report/per_query_delta.rst",
            category="Evaluation",
        ),
        ecdf="results/plots/logit_delta_ecdf.png",
    log:
        "logs/plots/plots.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        retrievers=RETRIEVERS,
        systems=SYSTEMS,
    script:
        "../scripts/plots.py"


rule plot_teacher:
    input:
        ranking=rules.training_data.output.ranking,
    output:
        plot="results/plots/teacher_p_yes.png",
    log:
        "logs/plots/teacher_p_yes.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/plot_teacher.py"


rule plot_training:
    input:
        stage1=rules.train_perception.output.log,
        stage2=rules.train_reranker.output.log,
    output:
        plot="results/plots/training_loss.png",
    log:
        "logs/plots/training_loss.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/plot_training.py"
