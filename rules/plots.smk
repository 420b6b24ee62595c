rule plots:
    input:
        table=rules.evaluate.output.table,
        per_query=rules.evaluate.output.per_query,
        reranked=rules.evaluate.input.reranked,
    output:
        ndcg=report(
            "results/plots/ndcg.png",
            caption="../report/ndcg_plot.rst",
            category="Evaluation",
        ),
        per_query_delta=report(
            "results/plots/per_query_delta.png",
            caption="../report/per_query_delta.rst",
            category="Evaluation",
        ),
        ecdf=report(
            "results/plots/logit_delta_ecdf.png",
            caption="../report/ecdf.rst",
            category="Evaluation",
        ),
    log:
        "logs/plots/plots.log",
    benchmark:
        "benchmarks/plots/plots.tsv"
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
        plot=report(
            "results/plots/teacher_p_yes.png",
            caption="../report/teacher_p_yes.rst",
            category="Data",
        ),
    log:
        "logs/plots/teacher_p_yes.log",
    benchmark:
        "benchmarks/plots/teacher_p_yes.tsv"
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
        plot=report(
            "results/plots/training_loss.png",
            caption="../report/training_loss.rst",
            category="Training",
        ),
    log:
        "logs/plots/training_loss.log",
    benchmark:
        "benchmarks/plots/training_loss.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/plot_training.py"
