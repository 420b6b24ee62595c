# The captions against the reference captions: per attribute, the share a caption names
# right (the demo's reference captions are the generator's true descriptions).
rule caption_audit:
    input:
        captions=rules.captions_merge.output.merged,
        references=rules.extract.output.reference_captions,
    output:
        audit=report(
            "results/captions/audit.tsv",
            caption="../report/caption_audit.rst",
            category="Data",
            subcategory="Caption audit",
        ),
    log:
        "logs/captions/audit.log",
    benchmark:
        "benchmarks/captions/audit.tsv"
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/caption_audit.py"
