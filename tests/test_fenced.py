"""The fast paths stay fenced in: Textual's private API only in tui/compat.py, the
cycle collector's switches only in runtime.py, psycopg's private modules only in
store/pg_import.py (grep over src/)."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "sladeck"
PRIVATE_TEXTUAL = re.compile(r"textual\._|_compositor|_Static__|_styles_cache|_handle_exception")
PRIVATE_PSYCOPG = re.compile(r"psycopg_binary|psycopg\.version\b|\bpsycopg\._")
COLLECTOR = re.compile(r"\bgc\.(disable|enable|freeze|unfreeze)\b|^\s*(import gc\b|from gc\b)",
                       re.MULTILINE)


def offenders(pattern: re.Pattern[str], allowed: str) -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        name = path.relative_to(SRC).as_posix()
        if name == allowed:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_only_the_compat_module_touches_textuals_private_api() -> None:
    assert (SRC / "tui" / "compat.py").is_file()
    assert offenders(PRIVATE_TEXTUAL, "tui/compat.py") == []


def test_only_the_pg_import_module_touches_psycopg_s_private_modules() -> None:
    assert PRIVATE_PSYCOPG.search((SRC / "store" / "pg_import.py").read_text(encoding="utf-8"))
    assert offenders(PRIVATE_PSYCOPG, "store/pg_import.py") == []


def test_only_the_runtime_module_switches_the_cycle_collector() -> None:
    assert COLLECTOR.search((SRC / "runtime.py").read_text(encoding="utf-8"))
    assert offenders(COLLECTOR, "runtime.py") == []


def test_the_domain_leaves_the_collector_to_its_callers() -> None:
    for path in (SRC / "domain").rglob("*.py"):
        assert not re.search(r"\bgc\b", path.read_text(encoding="utf-8")), path.name


def test_sladeck_import_runs_with_the_collector_paused(tmp_path: Path, monkeypatch) -> None:
    """The domain's import no longer pauses it: `sladeck import`, its caller, does."""
    import gc

    from conftest import call_cli
    from sladeck.domain import ingest

    seen: list[bool] = []
    real = ingest._import

    def spying(*args: object) -> object:
        seen.append(gc.isenabled())
        return real(*args)  # type: ignore[arg-type]
    monkeypatch.setattr(ingest, "_import", spying)
    alerts = tmp_path / "alerts.ndjson"
    alerts.write_text('{"title": "Disk full", "severity": "P2"}\n')
    code, out, err = call_cli("--db", str(tmp_path / "a.db"), "import", str(alerts))
    assert (code, out.strip()) == (0, "imported 1 new, 0 repeated"), err
    assert seen == [False] and gc.isenabled()
