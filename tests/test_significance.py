"""Paired significance tests, Holm's correction and the paper table, against hand computations."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rankvideo import significance as sig
from rankvideo.evaluate import relative_change, with_mean_rows

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SNAKEMAKE_LIMIT = 300  # a dry run or one light job: 2-10 s


def per_query_table(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """A per-query table like rankvideo.evaluate's: {(retriever, system): per-query nDCG@10}."""
    rows = [
        {"retriever": r, "system": s, "query_id": f"q{i:02d}", "in_run": True, "ndcg@10": v}
        for (r, s), column in values.items()
        for i, v in enumerate(column)
    ]
    return pd.DataFrame(rows)


def hand_table() -> pd.DataFrame:
    """30 queries, two retrievers. a: rankvideo beats both baselines, base equals the first
    stage; b: base loses to the first stage, rankvideo equals it and beats base."""
    alternating = np.array([0.0, 1.0] * 15)
    return per_query_table(
        {
            ("a", "first_stage"): [0.4] * 30,
            ("a", "base"): [0.4] * 30,
            ("a", "rankvideo"): list(0.6 + 0.2 * alternating),
            ("b", "first_stage"): [0.5] * 30,
            ("b", "base"): list(0.3 - 0.1 * alternating),
            ("b", "rankvideo"): [0.5] * 30,
        }
    )


def test_identical_runs_give_p_one_and_a_zero_interval():
    x = np.linspace(0.1, 0.9, 24)
    test = sig.paired_test(x, x.copy())
    assert test["p_permutation"] == 1.0 and test["p_ttest"] == 1.0
    assert test["mean_diff"] == 0.0 and (test["ci_low"], test["ci_high"]) == (0.0, 0.0)
    assert (test["wins"], test["ties"], test["losses"]) == (0, 24, 0)
    # one constant shift: an infinite t statistic (p = 0), nothing for the bootstrap to vary
    shifted = sig.paired_test(np.full(24, 0.75), np.full(24, 0.5))
    assert shifted["p_ttest"] == 0.0 and shifted["ci_low"] == shifted["ci_high"] == 0.25


def test_a_clear_shift_gives_a_small_p():
    rng = np.random.default_rng(3)
    baseline = rng.uniform(0.2, 0.6, 30)
    system = baseline + 0.2 + rng.normal(0, 0.02, 30)
    test = sig.paired_test(system, baseline, resamples=10000, seed=0)
    # every difference is positive: no random flip of signs reaches the observed mean, so
    # p = 2 x (0 + 1) / (10000 + 1)
    assert test["p_permutation"] == pytest.approx(2 / 10001)
    assert test["p_ttest"] < 1e-20
    assert test["ci_low"] < 0.2 < test["ci_high"] and test["ci_high"] - test["ci_low"] < 0.03
    assert (test["wins"], test["ties"], test["losses"]) == (30, 0, 0)


def test_few_queries_get_the_exact_randomization_test():
    # 5 positive differences: of the 2^5 = 32 sign flips only one reaches the observed
    # mean on each side, so p = 2 / 32 (every flip is enumerated: 32 < resamples)
    test = sig.paired_test([0.5, 0.6, 0.7, 0.8, 0.9], [0.4, 0.4, 0.4, 0.4, 0.4], resamples=1000)
    assert test["p_permutation"] == pytest.approx(2 / 32)


def test_holm_hand_example():
    assert sig.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # capped at 1, and monotone along the sorted order
    assert sig.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert sig.holm([0.04, 0.001, 0.04]) == pytest.approx([0.08, 0.003, 0.08])
    assert sig.holm([0.2]) == pytest.approx([0.2])


@pytest.mark.parametrize("seed", range(5))
def test_the_bootstrap_interval_contains_the_observed_mean_difference(seed):
    rng = np.random.default_rng(seed)
    baseline = rng.uniform(0, 1, 24)
    system = np.clip(baseline + rng.normal(0.03, 0.2, 24), 0, 1)
    test = sig.paired_test(system, baseline, resamples=2000, seed=seed)
    assert test["ci_low"] < test["mean_diff"] < test["ci_high"]
    assert test["mean_diff"] == pytest.approx(system.mean() - baseline.mean())


def test_wins_ties_and_losses():
    test = sig.paired_test([0.5, 0.5, 0.3, 0.2, 0.9], [0.4, 0.5, 0.5, 0.2 + 1e-12, 0.1])
    assert (test["wins"], test["ties"], test["losses"]) == (2, 2, 1)
    assert test["queries"] == 5


def test_comparisons_every_system_against_the_first_stage_trained_ones_against_base():
    systems = ["first_stage", "base", "caption_reasoner", "rankvideo", "mine"]
    assert sig.comparisons(systems) == [
        ("base", "first_stage"),
        ("caption_reasoner", "first_stage"),
        ("rankvideo", "first_stage"),
        ("mine", "first_stage"),
        ("rankvideo", "base"),
        ("mine", "base"),
    ]
    # no base evaluated: nothing is compared with it
    assert sig.comparisons(["first_stage", "rankvideo"]) == [("rankvideo", "first_stage")]


def test_the_trained_reranker_is_compared_with_its_ablations():
    systems = ["first_stage", "rankvideo", "rankvideo_no_distill"]
    assert sig.comparisons(systems) == [
        ("rankvideo", "first_stage"),
        ("rankvideo_no_distill", "first_stage"),
        ("rankvideo", "rankvideo_no_distill"),
    ]
    # an ablation without the full training has nothing to be compared with
    assert ("rankvideo", "rankvideo_no_distill") not in sig.comparisons(systems[::2])


def test_holm_runs_over_the_retrievers_of_each_comparison():
    rng = np.random.default_rng(0)
    values = {}
    for retriever, shift in (("r1", 0.02), ("r2", 0.05), ("r3", 0.1)):
        first = rng.uniform(0.2, 0.6, 20)
        values[(retriever, "first_stage")] = list(first)
        values[(retriever, "base")] = list(first + rng.normal(0, 0.1, 20))
        values[(retriever, "rankvideo")] = list(first + shift + rng.normal(0, 0.1, 20))
    tests = sig.significance(per_query_table(values), resamples=2000, alpha=0.05)
    assert list(tests.columns) == sig.COLUMNS
    assert len(tests) == 3 * 3
    assert set(zip(tests.system, tests.baseline, strict=True)) == {
        ("base", "first_stage"),
        ("rankvideo", "first_stage"),
        ("rankvideo", "base"),
    }
    for _, family in tests.groupby(["system", "baseline"]):
        assert list(family.retriever) == ["r1", "r2", "r3"]
        assert family.p_holm.to_numpy() == pytest.approx(sig.holm(family.p_permutation))
    assert (tests.significant == (tests.p_holm < 0.05)).all()
    assert (tests.wins + tests.ties + tests.losses == tests.queries).all()
    assert (tests.queries == 20).all()


def test_the_same_inputs_give_the_same_bytes(tmp_path):
    rng = np.random.default_rng(1)
    values = {}
    for retriever in ("a", "b"):
        first = rng.uniform(0.2, 0.6, 24)
        values[(retriever, "first_stage")] = list(first.round(4))
        values[(retriever, "base")] = list((first + rng.normal(0, 0.1, 24)).round(4))
        values[(retriever, "rankvideo")] = list((first + rng.normal(0.04, 0.1, 24)).round(4))
    per_query = tmp_path / "per_query.tsv"
    per_query_table(values).to_csv(per_query, sep="\t", index=False, float_format="%.4f")
    outputs = []
    for name, seed in (("one", 0), ("two", 0), ("other_seed", 7)):
        (tmp_path / name).mkdir()
        sig.run(
            per_query, tmp_path / name / "s.tsv", tmp_path / name / "t.md", resamples=500, seed=seed
        )
        outputs.append((tmp_path / name / "s.tsv").read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]  # the seed decides the resamples
    # each test has its own generator: dropping a system leaves the other rows as they were
    fewer = tmp_path / "fewer.tsv"
    table = per_query_table(values)
    table[table.system != "base"].to_csv(fewer, sep="\t", index=False, float_format="%.4f")
    sig.run(fewer, tmp_path / "fewer_s.tsv", tmp_path / "fewer_t.md", resamples=500, seed=0)
    kept = [line for line in outputs[0].decode().splitlines() if "\tbase\t" not in line]
    assert (tmp_path / "fewer_s.tsv").read_text().splitlines() == kept


def test_floats_are_written_in_a_fixed_format(tmp_path):
    tests = sig.significance(hand_table(), resamples=1000)
    text = sig.format_significance(tests)
    header, first = text.splitlines()[:2]
    assert header.split("\t") == sig.COLUMNS
    row = dict(zip(sig.COLUMNS, first.split("\t"), strict=True))
    assert row["retriever"] == "a" and row["system"] == "base" and row["baseline"] == "first_stage"
    assert row["mean_system"] == "0.400000" and row["mean_diff"] == "0.000000"
    assert row["ci_low"] == "0.000000" and row["p_permutation"] == "1" and row["p_ttest"] == "1"
    assert row["significant"] == "False" and (row["wins"], row["ties"]) == ("0", "30")


def test_the_paper_table_on_a_hand_made_per_query_table():
    per_query = hand_table()
    tests = sig.significance(per_query, resamples=10000, seed=0)
    text = sig.paper_table(per_query, tests, resamples=10000, seed=0)
    lines = text.splitlines()
    assert lines[:5] == [
        "| retriever | first_stage | base | rankvideo |",
        "|---|---|---|---|",
        "| a | 0.4000 | 0.4000 (+0.0%) | 0.7000 (+75.0%)*† |",
        "| b | 0.5000 | 0.2500 (-50.0%)* | 0.5000 (+0.0%)† |",
        # the macro average: 0.45, 0.325 and 0.6; not tested, so no marker
        "| mean | 0.4500 | 0.3250 (-27.8%) | 0.6000 (+33.3%) |",
    ]
    footnote = lines[-1]
    for words in (
        "nDCG@10 on 30 evaluation queries",
        "*: significantly different from first_stage",
        "†: from base",
        "randomization test",
        "10000 sign-flip resamples, seed 0",
        "Holm-corrected over the 2 retrievers",
        "alpha = 0.05",
        "macro average",
    ):
        assert words in footnote, words
    # the cells come from the evaluation summary when it is given (its means are taken
    # before rounding); the markers still from the tests
    summary = pd.DataFrame(
        {
            "retriever": ["a", "a", "a", "b", "b", "b", "mean", "mean", "mean"],
            "system": ["first_stage", "base", "rankvideo"] * 3,
            "ndcg@10": [0.40004, 0.4, 0.70001, 0.5, 0.25, 0.5, 0.45, 0.325, 0.6],
            "rel_change_ndcg@10": [0.0, 0.0, 0.7498, 0.0, -0.5, 0.0, 0.0, -0.2778, 0.3333],
        }
    )
    lines = sig.paper_table(per_query, tests, summary=summary).splitlines()
    assert lines[2] == "| a | 0.4000 | 0.4000 (+0.0%) | 0.7000 (+75.0%)*† |"
    summary.loc[2, "rel_change_ndcg@10"] = 0.7
    assert "0.7000 (+70.0%)*†" in sig.paper_table(per_query, tests, summary=summary)
    with pytest.raises(ValueError, match="summary lacks rows of the per-query table: b/base"):
        sig.paper_table(per_query, tests, summary=summary.drop(index=4))


def test_a_zero_first_stage_has_no_relative_change():
    per_query = per_query_table({("a", "first_stage"): [0.0] * 4, ("a", "sys"): [0.5] * 4})
    tests = sig.significance(per_query, resamples=100)
    lines = sig.paper_table(per_query, tests, resamples=100).splitlines()
    # one retriever: no mean row, no Holm over several
    assert lines[2:4] == ["| a | 0.0000 | 0.5000 |", ""]
    assert "seed 0), one retriever, so no correction, alpha = 0.05." in lines[4]
    assert "mean row" not in lines[4]


def test_bad_input_is_named():
    per_query = hand_table()
    with pytest.raises(ValueError, match=r"metric 'ndcg@5' is not in the per-query table"):
        sig.significance(per_query, metric="ndcg@5")
    odd = per_query.drop(index=per_query.index[-1])  # b/rankvideo lacks q29
    with pytest.raises(ValueError, match=r"b: rankvideo and first_stage .* other queries.*q29"):
        sig.significance(odd, resamples=100)
    with pytest.raises(ValueError, match="no first_stage rows"):
        sig.significance(per_query[per_query.system != "first_stage"], resamples=100)


def test_command_line_writes_both_files(tmp_path, capsys):
    per_query = tmp_path / "per_query.tsv"
    hand_table().to_csv(per_query, sep="\t", index=False, float_format="%.4f")
    sig.main(["--per-query", str(per_query), "--output-dir", str(tmp_path / "out")])
    sig.main(["--per-query", str(per_query), "--output-dir", str(tmp_path / "out")])
    tests = pd.read_csv(tmp_path / "out/significance.tsv", sep="\t")
    assert len(tests) == 2 * 3 and tests.significant.dtype == bool
    assert "| b | 0.5000 | 0.2500 (-50.0%)* | 0.5000 (+0.0%)† |" in capsys.readouterr().out
    table = (tmp_path / "out/table.md").read_text()
    assert table.startswith("| retriever | first_stage | base | rankvideo |")


def test_the_module_imports_neither_torch_nor_snakemake():
    code = "import sys, rankvideo.significance\n"
    code += "print(sorted({'torch', 'snakemake'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_dry_run_plans_the_significance_rule(workdir):
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "results/eval/significance.tsv", "results/eval/table.md"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=SNAKEMAKE_LIMIT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    job = result.stdout.split("rule significance:\n", 1)[1].split("\n\n", 1)[0]
    assert "input: results/eval/per_query.tsv, results/eval/ndcg.tsv" in job
    assert "output: results/eval/significance.tsv, results/eval/table.md" in job
    assert "log: logs/eval/significance.log" in job
    assert re.search(r"^evaluate\s+1$", result.stdout, re.MULTILINE)


@pytest.mark.workflow
def test_the_rule_writes_the_tests_and_the_table(workdir):
    """The rule alone, on a hand-made evaluation: a real Snakemake job."""
    eval_dir = workdir / "results/eval"
    eval_dir.mkdir(parents=True)
    per_query = hand_table()
    per_query.to_csv(eval_dir / "per_query.tsv", sep="\t", index=False, float_format="%.4f")
    summary = per_query.groupby(["retriever", "system"], sort=False)["ndcg@10"].mean()
    summary = summary.reset_index()
    summary.insert(2, "queries", 30)
    summary.insert(3, "missing_from_run", 0)
    summary = with_mean_rows(summary)
    summary["rel_change_ndcg@10"] = relative_change(summary)
    summary.to_csv(eval_dir / "ndcg.tsv", sep="\t", index=False, float_format="%.4f")
    (workdir / "small.yaml").write_text(
        "evaluate: {significance: {resamples: 1000, seed: 3}}\n"
        "rerank: {systems: [base, caption_reasoner, rankvideo]}\n"
    )
    for retriever in ("strong", "weak"):  # the merged scores the table's notes read
        for system in ("base", "caption_reasoner", "rankvideo"):
            cut = retriever == "strong" and system == "rankvideo"
            record = {"query_id": "q1", "doc_id": "v1", "logit_delta": 0.5}
            record |= {"cut_tokens": 40 * cut, "query_lost": cut}
            merged = workdir / "results/rerank" / retriever / f"{system}.jsonl"
            merged.parent.mkdir(parents=True, exist_ok=True)
            merged.write_text(json.dumps(record) + "\n")
    command = [*SNAKEMAKE, "results/eval/table.md", "--cores", "1", "--configfile", "small.yaml"]
    command += ["--allowed-rules", "significance"]  # takes every word after it
    result = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=SNAKEMAKE_LIMIT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = (eval_dir / "table.md").read_text()
    assert "| a | 0.4000 | 0.4000 (+0.0%) | 0.7000 (+75.0%)*† |" in table
    assert "| mean | 0.4500 | 0.3250 (-27.8%) | 0.6000 (+33.3%) |" in table
    assert "1000 sign-flip resamples, seed 3" in table
    [note] = [line for line in table.splitlines() if line.startswith("- ")]
    assert note.startswith("- rankvideo on strong: 1 of 1 reranked pairs")
    assert "1 of them (1 videos) kept no query token" in note
    tests = pd.read_csv(eval_dir / "significance.tsv", sep="\t")
    assert len(tests) == 6
    assert "rankvideo" in (workdir / "logs/eval/significance.log").read_text()
