"""The manual (README.md and docs/): the site builds with warnings as errors, the README stays a
front page, and every ``gvr`` command line the pages show names a real command and real options.

The command check is cheap and real: each example is split as a shell would split it, and every
subcommand and option it uses must appear in that command's own ``--help`` (run as a user would,
``python -m gvrcli SUB --help``), so a renamed or removed option fails here, not in a reader's
terminal. Scripts and modules the pages tell you to run (``python benchmarks/X.py``,
``python tools/X.py``, ``python -m MODULE``) must exist.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 250  # issue 22: a front page that fits on a few screens
SHELL_LANGS = {"", "bash", "sh", "shell", "console"}
CONTROL = {"&&", "||", ";", "|", "(", ")", "do", "then", "else", "!"}


def _env() -> dict:
    # Wide help so option names are never wrapped; no colour codes between the dashes.
    env = dict(os.environ, COLUMNS="200", TERMINAL_WIDTH="200", NO_COLOR="1", TERM="dumb", NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_the_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True, text=True, env=_env(), timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    for page in (REPO / "docs").glob("*.md"):  # every page became HTML, nav or not
        name = "" if page.stem == "index" else page.stem + "/"
        assert (site / name / "index.html").is_file(), page.name


def test_the_readme_is_a_front_page_whose_links_and_commands_hold():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "untrained" in text.split("## ")[0]  # said before the first section, not buried
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (REPO / target).exists(), f"README links to {target}, which does not exist"
    # The README's test command is the one CI runs.
    assert "python -m pytest -q" in (REPO / ".ci" / "run").read_text()
    assert "pip install -e '.[dev]' && python -m pytest -q" in text


# --------------------------------------------------------------------------------------------------
# Command lines in the pages
# --------------------------------------------------------------------------------------------------


def _shell_lines(text: str):
    """(line number, shell line) from fenced shell blocks (continuations joined), and inline code
    spans that start with ``gvr ``."""
    lines, fence, start, pending = text.splitlines(), None, 0, ""
    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip().lower()
            continue
        if fence is not None:
            if fence in SHELL_LANGS:
                start = start or n
                if stripped.endswith("\\"):
                    pending += stripped[:-1] + " "
                    continue
                yield start, pending + stripped
            pending, start = "", 0
            continue
        for span in re.findall(r"`(gvr [^`]+)`", line):
            yield n, span


def _commands(text: str):
    """(line, argv after the program) for every gvr invocation: ``gvr ...`` or ``python -m gvrcli ...``."""
    for n, line in _shell_lines(text):
        try:
            lexer = shlex.shlex(line, posix=True, punctuation_chars="();&|")
            lexer.whitespace_split, lexer.commenters = True, "#"
            tokens = list(lexer)
        except ValueError:  # an unbalanced quote in prose-like code: not a command line
            continue
        i = 0
        while i < len(tokens):
            at_start = i == 0 or tokens[i - 1] in CONTROL
            if at_start and tokens[i] == "gvr":
                head = i + 1
            elif at_start and tokens[i : i + 3] == ["python", "-m", "gvrcli"]:
                head = i + 3
            else:
                i += 1
                continue
            end = next((j for j in range(head, len(tokens)) if tokens[j] in CONTROL or tokens[j].startswith(">")), len(tokens))
            yield n, tokens[head:end]
            i = end


@lru_cache(maxsize=None)
def _help(*argv: str) -> str:
    run = subprocess.run([sys.executable, "-m", "gvrcli", *argv, "--help"], capture_output=True, text=True, env=_env(), timeout=120)
    assert run.returncode == 0, f"gvr {' '.join(argv)} --help: exit {run.returncode}\n{run.stderr}"
    return run.stdout


def _subcommands() -> set[str]:
    listing = _help().split("Commands:", 1)[-1]
    return set(re.findall(r"^\s*[│|]?\s*([a-z][a-z-]+)\s", listing, re.M))


def _options(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", help_text))


def test_every_gvr_command_in_the_docs_names_real_subcommands_and_options():
    examples = [(page, n, argv) for page in PAGES for n, argv in _commands(page.read_text())]
    assert len(examples) > 40, "the command extractor found too few examples: is it still reading the pages?"
    subcommands = _subcommands()
    assert {"upscale", "export", "degrade", "eval", "info", "trial-cascade"} <= subcommands
    named = sorted({argv[0] for _, _, argv in examples if argv and not argv[0].startswith("-")} & subcommands)
    with ThreadPoolExecutor(max_workers=2) as pool:  # one --help per subcommand, two at a time
        helps = dict(zip(named, pool.map(_help, named)))
    helps[None] = _help()

    problems = []
    for page, n, argv in examples:
        where = f"{page.relative_to(REPO)}:{n}: gvr {' '.join(argv)}"
        if not argv or argv[0] in ("...", "COMMAND"):
            continue
        sub = None if argv[0].startswith("-") else argv[0]
        if sub is not None and sub not in subcommands:
            problems.append(f"{where}: no subcommand {sub!r}")
            continue
        known = _options(helps[sub])
        for token in argv[1 if sub else 0 :]:
            option = token.strip("[]").split("=", 1)[0]
            if re.fullmatch(r"--?[A-Za-z][\w-]*", option) and option not in known:
                problems.append(f"{where}: {sub or 'gvr'} has no option {option}")
    assert not problems, "\n".join(problems)


def _option_tables(text: str):
    """(line, subcommand, option) for each option in the first column of a table, under the nearest
    heading that names one ``gvr SUB`` (the pages' option tables: upscale's, degrade's, eval's)."""
    sub = None
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            named = set(re.findall(r"`gvr ([a-z][a-z-]*)", line))
            sub = named.pop() if len(named) == 1 else (None if named else sub)
        elif line.startswith("|") and sub is not None:
            for option in re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", line.split("|")[1]):
                yield n, sub, option


def test_every_option_in_the_option_tables_exists():
    rows = [(page, *row) for page in PAGES for row in _option_tables(page.read_text())]
    assert {sub for _, _, sub, _ in rows} >= {"upscale", "degrade", "eval"}, "the option tables were not found"
    missing = [f"{page.name}:{n}: gvr {sub} has no option {option}" for page, n, sub, option in rows if option not in _options(_help(sub))]
    assert not missing, "\n".join(missing)


def test_every_script_and_module_the_docs_run_exists():
    missing = []
    for page in PAGES:
        for n, line in _shell_lines(page.read_text()):
            for script in re.findall(r"(?:^|\s)python3? (benchmarks/[\w/.-]+\.py|samples/[\w/.-]+\.py|tools/[\w/.-]+\.py)", line):
                if not (REPO / script).is_file():
                    missing.append(f"{page.name}:{n}: {script}")
            for module in re.findall(r"(?:^|\s)python3? -m ([\w.]+)", line):
                if module not in ("venv", "pip") and importlib.util.find_spec(module) is None:
                    missing.append(f"{page.name}:{n}: python -m {module}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("line, expected", [
    ("gvr upscale a/ b/ --model x.onnx --json > log.jsonl", [["upscale", "a/", "b/", "--model", "x.onnx", "--json"]]),
    ("for s in *; do gvr upscale \"$s\" out/; rc=$?; done", [["upscale", "$s", "out/"]]),
    ("pip install -e . && gvr upscale samples/ out/   # the sample clips", [["upscale", "samples/", "out/"]]),
    ("python -m gvrcli info --json", [["info", "--json"]]),
    ("echo gvr upscale", []),
])
def test_the_extractor_finds_commands_as_a_shell_would(line, expected):
    assert [argv for _, argv in _commands(f"```bash\n{line}\n```")] == expected
