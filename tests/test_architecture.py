"""Guard rails: the direction of imports between the layers.

The domain (`sladeck.domain`) knows neither the dashboard nor SQLite nor the store:
it reaches storage through its own interface. The dashboard (`sladeck.tui`) speaks
no SQL. Every import counts, wherever it is written: at the top, inside a function,
under `if TYPE_CHECKING`, relative, or through `importlib.import_module("…")`.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _module_name(path: Path, src: Path = SRC) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, src: Path = SRC) -> set[str]:
    """Every module `path` imports, as an absolute dotted name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = _module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, `level - 1` packages up
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (getattr(node.func, "id", None) == "__import__"
                   or getattr(node.func, "attr", None) == "import_module")):
            found.add(node.args[0].value)
    return found


def offenders(layer: str, forbidden: tuple[str, ...], src: Path = SRC
              ) -> dict[str, list[str]]:
    """{module of `layer`: what it imports of `forbidden`} for every module that does."""
    modules = sorted((src / "sladeck" / layer).rglob("*.py"))
    assert modules, f"no modules under {layer}"
    out: dict[str, list[str]] = {}
    for path in modules:
        bad = sorted(m for m in imports(path, src)
                     if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            out[_module_name(path, src)] = bad
    return out


def test_the_domain_imports_neither_the_dashboard_nor_sqlite() -> None:
    assert offenders("domain", ("textual", "sqlite3", "sqlite_utils")) == {}


def test_the_domain_does_not_import_the_store() -> None:
    assert offenders("domain", ("sladeck.store",)) == {}


def test_the_dashboard_speaks_no_sql() -> None:
    assert offenders("tui", ("sqlite3",)) == {}


def test_the_import_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The check itself: imports inside functions, under TYPE_CHECKING, relative ones
    and `import_module` strings are all found; a module that only shares a prefix is not."""
    package = tmp_path / "sladeck" / "domain"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sneaky.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import sqlite3x\n"
        "if TYPE_CHECKING:\n    import textual.app\n"
        "def f():\n    import sqlite3\n    from ..store import Store\n"
        "def g():\n    import importlib\n    return importlib.import_module('sqlite_utils')\n")
    (package / "relative.py").write_text("from .. import store\n")
    found = offenders("domain", ("textual", "sqlite3", "sqlite_utils", "sladeck.store"),
                      tmp_path)
    assert found == {
        "sladeck.domain.relative": ["sladeck.store"],
        "sladeck.domain.sneaky": ["sladeck.store", "sladeck.store.Store", "sqlite3",
                                  "sqlite_utils", "textual.app"]}


def test_the_reports_screens_load_only_when_opened() -> None:
    """Start-up (the command line, the launcher, the dashboard's app module) imports
    neither the reports and digest screens nor what they draw with."""
    import subprocess
    import sys

    lazy = ("sladeck.tui.reports", "sladeck.reports_out", "sladeck.domain.reports",
            "sladeck.domain.digest", "textual.widgets._sparkline", "textual.widgets._markdown")
    code = ("import sys, sladeck.launch, sladeck.cli, sladeck.tui.app\n"
            f"print([m for m in {lazy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
