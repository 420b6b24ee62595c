# rankvideo-workflow: RANKVIDEO, a reasoning reranker for text-to-video retrieval.
# Table of contents only: the rules live in rules/, their Python helpers in rules/common.smk.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/demo_data.smk"
include: "rules/pretraining.smk"
include: "rules/tiny_models.smk"
include: "rules/extract.smk"
include: "rules/captions.smk"
include: "rules/teacher.smk"
include: "rules/training_data.smk"
include: "rules/train_perception.smk"
include: "rules/train_reranker.smk"
include: "rules/rerank.smk"
include: "rules/evaluate.smk"
include: "rules/significance.smk"
include: "rules/depth.smk"
include: "rules/plots.smk"
include: "rules/teacher_audit.smk"
include: "rules/caption_audit.smk"
include: "rules/bench.smk"
include: "rules/provenance.smk"


# Steps that only read and write files (no torch, tests/test_imports.py) run on the
# submitting host of a cluster run instead of waiting in the queue as jobs.
localrules:
    captions_merge,
    teacher_merge,
    rerank_merge,
    rerank_file,
    evaluate,
    significance,
    depth,
    plots,
    plot_teacher,
    plot_training,
    teacher_audit,
    caption_audit,
    provenance,


rule all:
    default_target: True
    input:
        rules.evaluate.output.table,
        rules.plots.output.ndcg,
        rules.plots.output.ecdf,
        rules.plots.output.per_query_delta,
        rules.depth.output.table,
        rules.depth.output.plot,
        rules.training_data.output.ranking,
        rules.training_data.output.captions,
        rules.plot_teacher.output.plot,
        rules.plot_training.output.plot,
        rules.significance.output.tests,
        rules.significance.output.table,
        rules.provenance.output.table,
        rules.teacher_audit.output.audit,
        rules.teacher_audit.output.calibration,
        rules.teacher_audit.output.plot,
        caption_audit_outputs(),
