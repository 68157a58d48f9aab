"""psycopg, imported without `importlib.metadata`: the only module that knows psycopg's
private layout (tests/test_fenced.py keeps it so). `postgres` takes `psycopg` from here.

psycopg 3 and psycopg-binary each read their own version at import through
`importlib.metadata` (`psycopg/version.py`, `psycopg_binary/version.py`), which imports
`email`, `zipfile`, `csv` … and scans the distributions on sys.path: measured 28 ms of
psycopg's import after sladeck's (162 → 134 ms, medians of 21 alternating runs, load
0.9), about a tenth of `sladeck ack` on PostgreSQL. The version is only ever shown
(`psycopg.__version__`, a capability's error message).

`_preset_versions` gives both version modules the version pip recorded in the name of
the `*.dist-info` folder beside each package (the wheel's own metadata), before psycopg
is imported. Plain fallback: where a version is not found that way (another installer,
a zip, psycopg already imported, a layout change), psycopg is imported as usual.
"""

from __future__ import annotations

import os
import sys
import types
from importlib.util import find_spec

# (psycopg's private version module, the distribution whose version it reads)
VERSION_MODULES = (("psycopg.version", "psycopg"), ("psycopg_binary.version", "psycopg_binary"))


def dist_version(package: str) -> str | None:
    """The version of the installed distribution `package` (its name as pip spells
    dist-info folders), from the one `package-VERSION.dist-info` folder beside it."""
    try:
        spec = find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        site = os.path.dirname(next(iter(spec.submodule_search_locations)))
        found = [name[len(package) + 1:-len(".dist-info")] for name in os.listdir(site)
                 if name.startswith(package + "-") and name.endswith(".dist-info")]
    except (ImportError, OSError, ValueError):
        return None
    return found[0] if len(found) == 1 and found[0] else None


def _preset_versions() -> None:
    if "psycopg" in sys.modules:
        return
    for module, package in VERSION_MODULES:
        version = dist_version(package)
        if version is None:
            if package == "psycopg":
                return  # not found as expected: psycopg reads its versions itself
            continue  # psycopg-binary not installed (psycopg[c] or pure Python)
        preset = types.ModuleType(module, f"{package} {version} (preset by sladeck)")
        preset.__version__ = version  # type: ignore[attr-defined]
        sys.modules[module] = preset


_preset_versions()

import psycopg  # noqa: E402  (after the versions are preset)

for _module, _package in VERSION_MODULES:  # `psycopg.version` as a plain import binds it
    if _module in sys.modules and _package in sys.modules:
        sys.modules[_package].version = sys.modules[_module]

__all__ = ["psycopg"]
