"""The documentation: links resolve, the generated page is current, and the text speaks
of the project, not of its history (which belongs in CHANGELOG.md)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

spec = importlib.util.spec_from_file_location("config_docs", ROOT / "devtools" / "config_docs.py")
config_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(config_docs)


# --- the generated configuration page ---------------------------------------------------


def test_configuration_page_matches_the_schema():
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    expected = config_docs.render(schema)
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == expected, (
        "docs/configuration.md differs from the schema: run python devtools/config_docs.py"
    )


def test_configuration_page_lists_every_key_of_the_demo_config():
    """Every key that config.yaml sets has a row (maps such as tiny_models by <name>)."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    rows = set(re.findall(r"^\| `([^`]+)` \|", page, flags=re.M))
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    free = {"demo.retrievers", "teacher.instructions", "tiny_models", "rerank.models"}

    def keys(prefix, value):
        for name, child in value.items():
            key = f"{prefix}.{name}" if prefix else name
            if prefix in free:
                key = f"{prefix}.{config_docs.PLACEHOLDERS[prefix]}"
            if prefix or not isinstance(child, dict):  # a top-level section is a heading
                yield key
            if isinstance(child, dict):
                yield from keys(key, child)

    missing = sorted(k for k in set(keys("", config)) if k not in rows)
    assert not missing, f"keys of config.yaml without a row in docs/configuration.md: {missing}"


# --- links -------------------------------------------------------------------------------

FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """The text without code blocks and code spans, line numbers kept."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return CODE_SPAN.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    text = FENCE.sub("", page.read_text())
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path):
    for number, line in enumerate(prose(page.read_text()).splitlines(), start=1):
        for target in LINK.findall(line):
            yield number, target


def test_pages_exist():
    assert (ROOT / "README.md").is_file()
    assert len(PAGES) > 5, PAGES


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for page in PAGES:
        for number, target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            where = (page.parent / path).resolve() if path else page
            name = f"{page.relative_to(ROOT)}:{number}: {target}"
            if not where.exists():
                broken.append(f"{name} (no such file)")
            elif anchor and where.suffix == ".md" and anchor not in anchors(where):
                broken.append(f"{name} (no heading with anchor #{anchor})")
    assert not broken, "broken links:\n" + "\n".join(broken)


NAMED_PATH = re.compile(
    r"(?<![\w/.-])((?:rankvideo|rules|scripts|devtools|tests|schemas|configs|slurm|report|docs"
    r"|\.ci)/[\w./-]*\w)(?:::(\w+))?"
)
NAMED_MODULE = re.compile(r"python -m (rankvideo(?:\.\w+)+)")


def test_named_files_modules_and_tests_exist():
    """A path, a `python -m` module or a `file::test` that a page names is in the repository:
    when code moves, the page that describes it fails here."""
    missing = []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            name = f"{page.relative_to(ROOT)}:{number}"
            for path, test in NAMED_PATH.findall(line):
                if any(c in path for c in "<*{"):  # a pattern, not a file
                    continue
                if not (ROOT / path).exists():
                    missing.append(f"{name}: {path}")
                elif test and not re.search(rf"^\s*def {test}\(", (ROOT / path).read_text(), re.M):
                    missing.append(f"{name}: {path}::{test}")
            for module in NAMED_MODULE.findall(line):
                parts = ROOT.joinpath(*module.split("."))
                if not (parts.with_suffix(".py").exists() or (parts / "__main__.py").exists()):
                    missing.append(f"{name}: python -m {module}")
    assert not missing, "pages name what is not there:\n" + "\n".join(missing)


PAGE_REFERENCE = re.compile(r"(?<![\w/.-])(docs/[\w.-]+\.md)")
README_SECTION = re.compile(r"README[:,]?\s+\"([^\"]+)\"")


def test_code_points_at_pages_and_sections_that_exist():
    """A comment or docstring that sends the reader to docs/<page>.md or to a README
    section ('README: "Training"') points at something that is there."""
    readme = {slug(h) for h in anchors(ROOT / "README.md")}
    stale = []
    for path in code_files():
        name = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for page in PAGE_REFERENCE.findall(line):
                if not (ROOT / page).exists():
                    stale.append(f"{name}:{number}: {page} (no such page)")
            for section in README_SECTION.findall(line):
                if slug(section) not in readme:
                    stale.append(f"{name}:{number}: README section {section!r} (not in README)")
    assert not stale, "pointers to documentation that moved:\n" + "\n".join(stale)


def test_slug_follows_github():
    assert slug("On a GPU, at the paper's model size") == "on-a-gpu-at-the-papers-model-size"
    assert slug("What to edit: `slurm/config.yaml` only") == "what-to-edit-slurmconfigyaml-only"
    assert slug("MultiVENT 2.0") == "multivent-20"
    assert slug("## `--rerun-triggers mtime` for long training".lstrip("# ")) == (
        "--rerun-triggers-mtime-for-long-training"
    )


def test_the_readme_is_a_front_door():
    """Short, and every page of docs/ is on its map."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250, "README.md: at most 250 lines; move detail to docs/"
    linked = {target.partition("#")[0] for _, target in links(ROOT / "README.md")}
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert not pages - linked, f"docs pages missing from the README's map: {pages - linked}"
    for paper in ("arxiv.org/abs/2602.02444", "arxiv.org/abs/2502.18418"):
        assert paper in readme


# --- the project, not its history --------------------------------------------------------

# Words of work periods, tickets and acceptance thresholds. `session` and `issue` are
# precise: pytest's scope="session" and request.session, and /issues/ in a URL, are
# not hits.
HISTORY = [
    r"(?<![.\"'\w])sessions?\b(?![\"'])",
    r"(?<![/.\-\w])issues?\b(?![/\-])",
    r"\btickets?\b",
    r"\bthe bar\b(?!\s+(chart|plot|graph))",
    r"\b(clears?|misses|missed|meets?|met) (the|its|this) bar\b",
    r"\bwithdrawn\b",
    r"\bearlier (work|sessions?)\b",
    r"\b(first|second|third|fourth|fifth|previous|last|this|next) sessions?\b",
    r"\buntil this (one|session|change)\b",
    r"\bacceptance (threshold|criteri)",
    r"\bwork periods?\b",
]
HISTORY_RE = re.compile("|".join(f"(?:{p})" for p in HISTORY), flags=re.I)

SPOKEN = [
    "README.md",
    "docs/*.md",
    "rankvideo/**/*.py",
    "rules/*.smk",
    "scripts/*.py",
    "tests/*.py",
    "devtools/*.py",
    "configs/*.yaml",
    "config.yaml",
    "schemas/*.yaml",
    "slurm/*.yaml",
    "report/*.rst",
    "Snakefile",
]
EXEMPT = {"CHANGELOG.md", "tests/test_docs.py"}


def spoken_files() -> list[Path]:
    """Every file that speaks of the project, less CHANGELOG.md and this test."""
    found = []
    for pattern in SPOKEN:
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file() and path.relative_to(ROOT).as_posix() not in EXEMPT:
                found.append(path)
    return found


def code_files() -> list[Path]:
    """The spoken files that are not pages, and the project's own settings and CI."""
    extra = [ROOT / "pyproject.toml", ROOT / ".ci" / "run", ROOT / "environment.yml"]
    return [p for p in spoken_files() if p.suffix != ".md"] + [p for p in extra if p.exists()]


def history_hits() -> list[str]:
    hits = []
    for path in spoken_files():
        name = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = HISTORY_RE.search(line)
            if match:
                hits.append(f"{name}:{number}: {match.group(0)!r} in {line.strip()[:100]}")
    return hits


def test_history_words_are_precise():
    for legit in (
        '@pytest.fixture(scope="session")',
        "selected = request.session.items",
        "see https://github.com/org/repo/issues/12",
        "a bar chart; the bar chart shows",
        "the earlier extraction is left as it was",
    ):
        assert not HISTORY_RE.search(legit), legit
    for history in (
        "the previous session measured 4 min 59 s",
        "Third session: within-query effects",
        "clears the issue's bar",
        "the bar is met on every seed",
        "the measurement was withdrawn",
        "until this one",
        "as in earlier work",
        "see issue 4",
    ):
        assert HISTORY_RE.search(history), history


def test_docs_speak_of_the_project():
    """README, docs, code, tests and configs describe the project as it is; the story of
    how it got there goes to CHANGELOG.md, by date."""
    hits = history_hits()
    assert not hits, "history words (reword; history belongs in CHANGELOG.md):\n" + "\n".join(hits)
