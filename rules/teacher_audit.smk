# The teacher's labels against the true labels of the training pairs. The training
# records exist in both training_data modes; the teacher's own records (hard label,
# label source, forced answers, reasoning tokens) only when they are synthesized.
rule teacher_audit:
    input:
        ranking=rules.training_data.output.ranking,
        labels=(
            rules.teacher_merge.output.merged
            if config["training_data"] == "synthesize"
            else []
        ),
    output:
        audit=report(
            "results/teacher/audit.tsv",
            caption="../report/teacher_audit.rst",
            category="Data",
            subcategory="Teacher audit",
        ),
        calibration=report(
            "results/teacher/calibration.tsv",
            caption="../report/teacher_audit.rst",
            category="Data",
            subcategory="Teacher audit",
        ),
        plot=report(
            "results/plots/teacher_audit.png",
            caption="../report/teacher_audit.rst",
            category="Data",
            subcategory="Teacher audit",
        ),
    log:
        "logs/teacher/audit.log",
    benchmark:
        "benchmarks/teacher/audit.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/teacher_audit.py"
