"""The READMEs' code blocks stay true: every ``adrecall`` line parses with today's options (and
no retired spelling), every ``python -m benchmarks.X`` option exists in that module, every
``make`` target exists, and the Python blocks' imports resolve."""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest

from adrecall.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
READMES = (ROOT / "README.md", ROOT / "benchmarks" / "README.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """(language, body) of each fenced block."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(path.read_text(encoding="utf-8"))]


def shell_lines(body: str) -> list[str]:
    """Commands of a shell block: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def as_written(line: str) -> list[str]:
    """Arguments of a documented command with every optional ``[...]`` part taken and the
    first of each ``a|b`` choice."""
    words = shlex.split(line.replace("[", " ").replace("]", " "))
    return [w.split("|")[0] if "|" in w and not w.startswith("|") else w for w in words]


def documented(prefix: str) -> list[tuple[str, str]]:
    out = []
    for readme in READMES:
        for lang, body in code_blocks(readme):
            if lang in ("bash", "sh", ""):
                out += [(readme.name, line) for line in shell_lines(body)
                        if line.startswith(prefix)]
    return out


ADRECALL_LINES = documented("adrecall ")
BENCHMARK_LINES = documented("python -m benchmarks.")


def test_the_readmes_document_commands() -> None:
    assert len(ADRECALL_LINES) >= 15 and len(BENCHMARK_LINES) >= 5


@pytest.mark.parametrize(("readme", "line"), ADRECALL_LINES)
def test_adrecall_lines_parse_without_retired_spellings(readme: str, line: str) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(as_written(line)[1:])
        except SystemExit:
            pytest.fail(f"{readme}: `{line}` does not parse: {err.getvalue()}")
    assert "deprecated" not in err.getvalue(), f"{readme}: `{line}` uses a retired spelling"


@pytest.mark.parametrize(("readme", "line"), BENCHMARK_LINES)
def test_benchmark_lines_name_real_modules_and_options(readme: str, line: str) -> None:
    args = as_written(line)
    module = args[2]
    source = (ROOT / Path(*module.split("."))).with_suffix(".py").read_text(encoding="utf-8")
    for option in (a for a in args[3:] if a.startswith("--")):
        assert f'"{option}"' in source, f"{readme}: {module} has no option {option}"


def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    lines = [line for readme in READMES for lang, body in code_blocks(readme)
             if lang in ("bash", "sh", "") for line in shell_lines(body) if line.startswith("make ")]
    assert lines
    for line in lines:
        assert re.search(rf"^{re.escape(line.split()[1])}:", makefile, re.MULTILINE), line


def test_python_blocks_compile_and_their_imports_resolve() -> None:
    blocks = [body for readme in READMES for lang, body in code_blocks(readme) if lang == "python"]
    assert blocks
    for body in blocks:
        tree = ast.parse(body)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = importlib.import_module(node.module or "")
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)
