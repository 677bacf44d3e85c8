"""The package's size rule, so that a reader meets small pieces: no function in src/ longer than 80 lines
(from its `def` to its last line, decorators aside) and no module longer than 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "wmplan"
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 80, 400


def function_lengths(source: str) -> dict[str, int]:
    """name (Class.method, outer.inner) -> lines of every function in `source`."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    found[name] = (child.end_lineno or child.lineno) - child.lineno + 1
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_the_measure_counts_every_function_from_def_to_its_last_line():
    source = "def a():\n    x = 1\n    return x\n\nclass B:\n    def c(self):\n        def d():\n            pass\n"
    assert function_lengths(source) == {"a": 3, "B.c": 3, "B.c.d": 2}


def test_no_function_is_longer_than_the_limit():
    long = {
        f"{path.relative_to(SRC)}:{name}": lines
        for path in sorted(SRC.rglob("*.py"))
        for name, lines in function_lengths(path.read_text()).items()
        if lines > MAX_FUNCTION_LINES
    }
    assert long == {}, f"split these into named steps (at most {MAX_FUNCTION_LINES} lines each)"


def test_no_module_is_longer_than_the_limit():
    long = {
        str(path.relative_to(SRC)): n
        for path in sorted(SRC.rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"split these by meaning (at most {MAX_MODULE_LINES} lines each)"
