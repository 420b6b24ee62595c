"""Real Snakemake runs: lint, dry run, the demo end to end, and a new user's own data."""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import SHORT_PRETRAINING

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


# Limits of the snakemake runs: guards against hangs, at least 3x the time measured on a
# 2-core machine, whose kind varies up to 2x in speed (the README's test command must
# pass on the slow ones too); speed itself is measured by the benchmarks.
DRY_RUN_LIMIT = 300  # a dry run: 2-5 s
DEMO_LIMIT = 2400  # the demo's whole DAG: 5-6 min, 12 min 40 s on a slow machine
USER_DATA_LIMIT = 1200  # real clips, no training: 1-2 min
REPORT_LIMIT = 600  # snakemake --report after the demo


def snakemake(*args, cwd, timeout=DRY_RUN_LIMIT):
    return subprocess.run(
        [*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_lint(workdir):
    result = snakemake("--lint", cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_plans_the_default_target(workdir):
    result = snakemake("-n", "--quiet", "rules", cwd=workdir)
    assert result.returncode == 0, result.stderr
    rules = ["demo_data", "tiny_models", "extract", "captions_shard", "teacher_shard"]
    rules += ["training_data", "train_perception", "train_reranker", "rerank_shard"]
    rules += ["evaluate", "plots", "plot_teacher", "plot_training", "teacher_audit"]
    rules += ["provenance", "significance", "depth"]
    rules += ["pretraining_world", "caption_audit", "train_reranker_ablation"]
    for rule in rules:
        assert rule in result.stdout


def test_archive_training_data_skips_the_teacher(workdir):
    result = snakemake("results/train/ranking.jsonl", "-n", "--quiet", "rules", cwd=workdir)
    assert "teacher_shard" in result.stdout
    archive = ["--config", "training_data=archive"]
    result = snakemake(
        "results/train/ranking.jsonl", *archive, "-n", "--quiet", "rules", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    assert "teacher_shard" not in result.stdout and "captions_shard" not in result.stdout


@pytest.mark.parametrize(
    "bad, named",
    [
        ("rerank: {depht: 10}", "depht"),
        ("rerank: {depth: ten}", "'ten' is not of type 'integer'"),
        ("rerank: {shards: 0}", "0 is less than the minimum of 1"),
        ("rerank: {systems: [base, rankvid]}", "rerank.systems: ['rankvid'] are neither built in"),
        ("data: {retrievers: [strong, weak, strong]}", "data.retrievers names ['strong'] more"),
        (
            'rerank: {systems: [pub], models: {pub: {file: "s.run", model: tiny-qwen3-vl}}}',
            "is valid under each of {'required': ['file']}, {'required': ['model']}",
        ),
        (
            'rerank: {systems: [pub], models: {pub: {file: "s.run", profile: chat}}}',
            "rerank.models.pub: profile set for a file of scores, which no model reads",
        ),
        (
            'rerank: {systems: [pub], models: {pub: {file: "s/{system}.run"}}}',
            "may hold only the field {retriever}",
        ),
        (
            'rerank: {systems: [pub], models: {pub: {file: "missing/{retriever}.run"}}}',
            "missing/strong.run",
        ),
        # a YAML syntax error: snakemake reads --configfile itself and names neither file nor
        # line (docs/configuration.md says how to find it)
        ("data: {retrievers: [strong\n", "Config file is not valid JSON or YAML"),
        ("video: {fps: -1}", "-1 is less than or equal to the minimum of 0"),
        ("models: {vlm: models/missing/qwen}", "models/missing/qwen: no such model folder"),
        ("models: {teacher: empty}", "empty: the folder holds no model"),
        (
            "stage2: {losses: {listwise: 0, distill: 5, pointwise: 0}}",
            "rerank.systems: rankvideo_no_distill cannot train: stage2.losses: listwise",
        ),
        (
            "stage2: {losses: {listwise: 0, distill: 0, pointwise: 0}}",
            "stage2.losses: listwise, distill and pointwise are all 0",
        ),
        (
            "stage2: {losses: {pointwise: 1, positive_weight: 0, negative_weight: 0}}",
            "positive_weight and negative_weight are both 0",
        ),
        (
            "tiny_models: {tiny-qwen3-vl-instruct: {from: tiny-qwen3-omni}}",
            "model 'tiny-qwen3-omni': no architecture under tiny_models",
        ),
        (
            "tiny_models: {tiny-qwen3: {pretrain: {task: judge}}}",
            "tiny_models.tiny-qwen3.pretrain.task: a qwen3 model cannot learn 'judge'",
        ),
        (
            "tiny_models: {tiny-x: {from: tiny-qwen3-vl-instruct}}\nmodels: {vlm: tiny-x}",
            "tiny_models.tiny-x.from: 'tiny-qwen3-vl-instruct' is not a tiny model built",
        ),
        (
            "tiny_models: {tiny-qwen3: {pretrain: {stepz: 3}}}",
            "Additional properties are not allowed ('stepz' was unexpected)",
        ),
    ],
)
def test_bad_config_is_refused_before_any_job(workdir, bad, named):
    (workdir / "empty").mkdir()
    (workdir / "bad.yaml").write_text(bad + "\n")
    result = snakemake("-n", "--configfile", "bad.yaml", cwd=workdir)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr
    assert not (workdir / "results").exists()


def test_tiny_models_without_pretraining_or_from_another_plan(workdir):
    """pretrain: null keeps a tiny model as built; `from` alone copies another one."""
    (workdir / "tiny.yaml").write_text(
        "tiny_models: {tiny-qwen3: {pretrain: null}, tiny-x: {from: tiny-qwen3-vl}}\n"
        "models: {vlm: tiny-x}\n"
    )
    result = snakemake("results/eval/ndcg.tsv", "-n", "--configfile", "tiny.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [j.split("\nrule ")[0] for j in result.stdout.split("rule tiny_models:")[1:]]
    inputs = {re.search(r"output: (\S+)", j).group(1): re.search(r"input: (.*)", j) for j in jobs}
    assert inputs["resources/models/tiny-qwen3"] is None  # nothing to learn from
    assert inputs["resources/models/tiny-x"].group(1) == "resources/models/tiny-qwen3-vl"


@pytest.mark.parametrize(
    "name, target, systems, rules",
    [
        ("released", "results/eval/ndcg.tsv",
         ["base", "rankvideo-release", "rankvideo-trained", "qwen3-vl-reranker"], ["extract"]),
        ("multivent", "all", ["base", "rankvideo"],
         ["extract", "training_data", "train_perception", "train_reranker", "plots"]),
    ],
)  # fmt: skip
def test_shipped_configs_plan_their_runs(workdir, name, target, systems, rules):
    """configs/*.yaml, with their placeholder paths, plan the run they describe."""
    data = workdir / "multivent"
    (data / "videos").mkdir(parents=True)
    for placeholder in ("data.tar.gz", "queries.csv", "judgments.jsonl"):
        (data / placeholder).write_text("")
    result = snakemake(
        target, "-n", "--quiet", "rules", "--configfile", f"configs/{name}.yaml", cwd=workdir
    )
    assert result.returncode == 0, result.stderr[-3000:]
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, re.MULTILINE))
    for rule in rules:
        assert rule in planned, result.stdout
    assert int(planned["rerank_shard"]) == 64 * len(systems)
    if name == "released":  # scoring only: nothing is captioned, labelled or trained
        assert not {"captions_shard", "teacher_shard", "train_reranker"} & planned.keys()
    result = snakemake(target, "-n", "--configfile", f"configs/{name}.yaml", cwd=workdir)
    shards = set(re.findall(r"results/rerank/shards/([\w.-]+)/0\.jsonl", result.stdout))
    assert shards == set(systems)


@pytest.mark.workflow
def test_demo_end_to_end(workdir):
    # rule all: every table, record and plot
    result = snakemake("--cores", "2", cwd=workdir, timeout=DEMO_LIMIT)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(workdir / "results/eval/ndcg.tsv", sep="\t")
    systems = ["first_stage", "base", "caption_reasoner", "rankvideo", "rankvideo_no_distill"]
    assert [tuple(r) for r in table[["retriever", "system"]].values] == [
        (retriever, system) for retriever in ("strong", "weak", "mean") for system in systems
    ]
    metrics = [c for c in table.columns if c.startswith(("ndcg@", "recall@"))]
    assert ((table[metrics] >= 0) & (table[metrics] <= 1)).all().all()
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    evals = (workdir / "results/data/splits/eval.txt").read_text().split()
    assert (table.queries == len(evals)).all() and (table.missing_from_run == 0).all()
    first = table[table.system == "first_stage"].set_index("retriever")["ndcg@10"]
    noise = config["demo"]["retrievers"]
    assert noise["strong"] < noise["weak"] and first["strong"] > first["weak"]
    assert 0.3 < first["weak"] < first["strong"] < 0.8
    # the reranked files hold every evaluation candidate, once
    for retriever in ("strong", "weak"):
        for system in systems[1:]:
            scores = pd.read_json(
                workdir / f"results/rerank/{retriever}/{system}.jsonl", lines=True
            )
            assert len(scores) == len(evals) * config["rerank"]["depth"]
            assert not scores.duplicated(["query_id", "doc_id"]).any()
    # synthesis: a caption per needed video, a label per training candidate, joined records
    captions = pd.read_json(workdir / "results/captions/captions.jsonl", lines=True)
    labels = pd.read_json(workdir / "results/teacher/labels.jsonl", lines=True)
    train = (workdir / "results/data/splits/train.txt").read_text().split()
    # the top-k candidates of every training query, and its judged positives outside them
    qrels = pd.read_csv(workdir / "results/data/qrels.txt", sep=" ", names=["q", "z", "d", "g"])
    judged = qrels[(qrels.g > 0) & qrels.q.isin(train)]
    positives = set(zip(judged.q, judged.d, strict=True))
    labelled = set(zip(labels.query_id, labels.doc_id, strict=True))
    assert positives <= labelled and not labels.duplicated(["query_id", "doc_id"]).any()
    assert len(labelled - positives) <= len(train) * config["teacher"]["topk"] < len(labels)
    assert set(labels.doc_id) <= set(captions.doc_id)
    assert labels.teacher_p_yes.between(0, 1).all() and labels.forced_answer.mean() <= 0.05
    # every stage carries signal: the pretrained captioner names what the clips show, the
    # teacher's labels rank the relevant training pairs first, and reasoning over the
    # captions beats the first stages, which cannot see motion
    captioned = pd.read_csv(workdir / "results/captions/audit.tsv", sep="\t")
    accuracy = captioned.set_index("attribute").accuracy
    assert (accuracy[["colour", "shape", "motion"]] >= 0.8).all(), accuracy
    judged = pd.read_csv(workdir / "results/teacher/audit.tsv", sep="\t").set_index("measure")
    assert judged.loc["roc_auc", "value"] >= 0.9
    assert all(s.startswith(("Colour", "colour")) for s in labels.teacher_reasoning)
    ranking = pd.read_json(workdir / "results/train/ranking.jsonl", lines=True)
    assert set(ranking.query_id) == set(train) and ranking.true_label.isin([0, 1]).all()
    counts = pd.read_csv(workdir / "results/train/query_counts.tsv", sep="\t")
    assert counts.pairs.sum() == len(ranking)
    assert (workdir / "results/plots/teacher_p_yes.png").stat().st_size > 10_000
    # training: both stages logged every step; the zero-shot base VLM (pretrained to judge
    # on the world) and the trained reranker beat the first stage (which cannot see
    # motion) by 0.05
    logs = {"stage1": "stage1", "stage2": "stage2", "ablations/rankvideo_no_distill": "stage2"}
    for folder, stage in logs.items():
        steps = pd.read_csv(workdir / f"results/{folder}/train_log.tsv", sep="\t")
        assert len(steps) == config[stage]["max_steps"]
        assert steps.loss.iloc[-20:].mean() < steps.loss.iloc[:20].mean()
    ndcg = table.set_index(["retriever", "system"])["ndcg@10"]
    for retriever in ("strong", "weak"):
        assert ndcg[(retriever, "base")] > ndcg[(retriever, "first_stage")] + 0.05
        assert ndcg[(retriever, "rankvideo")] > ndcg[(retriever, "first_stage")] + 0.05
        assert ndcg[(retriever, "caption_reasoner")] > ndcg[(retriever, "first_stage")] + 0.05
    assert (workdir / "results/plots/training_loss.png").stat().st_size > 10_000
    assert (workdir / "results/plots/ndcg.png").stat().st_size > 10_000
    assert (workdir / "results/plots/logit_delta_ecdf.png").stat().st_size > 10_000
    assert list((workdir / "benchmarks/rerank/shards/base").glob("*.tsv"))
    # decode once: the captioner decoded every evaluation candidate before training, so the
    # trained reranker's shards read all of their videos from the frame cache
    for log in (workdir / "logs/rerank/shards/rankvideo").glob("*.log"):
        text = log.read_text()
        assert "(per pair;" in text and " 0 videos decoded," in text, text[-500:]
    # a finished shard is not redone; nor is anything when the frame cache moves or is
    # bounded (it decides no frame)
    again = snakemake("--cores", "2", "-n", "results/eval/ndcg.tsv", cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr
    (workdir / "cache.yaml").write_text("video: {cache: elsewhere/frames, cache_gb: 0.5}\n")
    moved = snakemake(
        "-n", "results/eval/ndcg.tsv", "--configfile", "config.yaml", "cache.yaml", cwd=workdir
    )
    assert "Nothing to be done" in moved.stdout + moved.stderr, moved.stdout[-2000:]
    # the results package: significance, the paper table with its mean row, depth, audit
    tests = pd.read_csv(workdir / "results/eval/significance.tsv", sep="\t")
    assert set(tests.system) == set(systems[1:]) and tests.p_holm.between(0, 1).all()
    ablation = tests[tests.baseline == "rankvideo_no_distill"]
    assert set(ablation.system) == {"rankvideo"} and len(ablation) == 2  # per retriever
    paper = (workdir / "results/eval/table.md").read_text()
    assert "| mean |" in paper and "rankvideo" in paper
    depth = pd.read_csv(workdir / "results/eval/depth.tsv", sep="\t")
    deepest = depth[depth.depth == config["rerank"]["depth"]].set_index(["retriever", "system"])
    for (retriever, system), row in deepest.iterrows():
        assert row["ndcg@10"] == pytest.approx(ndcg[(retriever, system)], abs=1e-4)
    audit = pd.read_csv(workdir / "results/teacher/audit.tsv", sep="\t").set_index("measure")
    assert audit.loc["pairs", "value"] == len(ranking)
    # the report holds every table and plot of the run, and the provenance
    report = snakemake("--report", "results/report.html", cwd=workdir, timeout=REPORT_LIMIT)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (workdir / "results/report.html").read_text()
    shown = ["table.md", "ndcg.tsv", "per_query.tsv", "significance.tsv", "depth.tsv"]
    shown += ["ndcg.png", "per_query_delta.png", "logit_delta_ecdf.png", "depth.png"]
    shown += ["teacher_p_yes.png", "teacher_audit.png", "audit.tsv", "calibration.tsv"]
    shown += ["Caption audit"]
    shown += ["training_loss.png", "provenance.tsv", "config.yaml"]
    for name in shown:
        assert name in html, name
    assert html.count("image/png") >= 7  # the plots are embedded, not linked
    provenance = (workdir / "results/provenance/provenance.tsv").read_text()
    assert "stage 2 (rankvideo): results/stage2/model\tsha256:" in provenance


@pytest.mark.workflow
def test_user_folder_of_real_videos(workdir, real_videos):
    ids = sorted(p.stem for p in real_videos.iterdir())
    (workdir / "mine").mkdir()
    (workdir / "mine/queries.tsv").write_text(
        "u1\ta cartoon rabbit in a meadow\nu2\tpeople riding bikes\nu3\ta man on the phone\n"
    )
    (workdir / "mine/qrels.txt").write_text(
        "u1 0 bigbuckbunny 2\nu2 0 bikes 1\nu3 0 carphone_pristine 1\nu3 0 carphone_distorted 1\n"
    )
    run = {
        q: {v: float((i * 7 + j) % 5) for j, v in enumerate(ids)}
        for i, q in enumerate(["u1", "u2", "u3"])
    }
    (workdir / "mine/ranking_hand.json").write_text(pd.Series(run).to_json())
    config = {
        "data": {
            "archive": None,
            "retrievers": ["hand"],
            "videos": str(real_videos),
            "queries": "mine/queries.tsv",
            "qrels": "mine/qrels.txt",
            "first_stage_dir": "mine",
        },
        "video": {"max_frames": 8, "min_pixels": 4096, "max_pixels": 16384},
        "rerank": {"depth": 4, "shards": 1, "systems": ["base", "caption_reasoner"]},
        "captions": {"max_new_tokens": 8},
        **SHORT_PRETRAINING,
    }
    (workdir / "mine.yaml").write_text(yaml.safe_dump(config))

    def run():
        return snakemake(
            "--cores", "2", "results/eval/ndcg.tsv", "--configfile", "mine.yaml",
            cwd=workdir, timeout=USER_DATA_LIMIT,
        )  # fmt: skip

    result = run()
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(workdir / "results/eval/ndcg.tsv", sep="\t")
    assert list(table.system) == ["first_stage", "base", "caption_reasoner"]
    assert (table.queries == 3).all()
    # a malformed line is named, and the run fails at the step that read it
    (workdir / "mine/qrels.txt").write_text("u1 0 bigbuckbunny 2\nu2 0 bikes\n")
    result = run()
    assert result.returncode != 0
    assert (
        "mine/qrels.txt:2: expected 'query_id 0 doc_id relevance'"
        in (workdir / "logs/extract.log").read_text()
    )


def test_every_config_key_is_described_in_the_schema():
    schema = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())
    config = yaml.safe_load((ROOT / "config.yaml").read_text())

    def walk(values, node, prefix=""):
        # keys of an object only (`if: {type: object}`); keys required in one of the forms
        props = node.get("properties") or node.get("then", {}).get("properties", {})
        required = [*node.get("required", [])]
        required += [k for form in node.get("oneOf", []) for k in form.get("required", [])]
        for key, value in values.items():
            sub = props.get(key) or node.get("additionalProperties")
            assert isinstance(sub, dict), f"{prefix}{key} is not in the schema"
            assert "description" in sub, f"{prefix}{key} has no description"
            if key in props and key not in required:
                assert "default" in sub, f"{prefix}{key} has no default"
            if isinstance(value, dict):
                walk(value, sub, f"{prefix}{key}.")

    walk(config, schema)
