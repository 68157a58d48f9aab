"""The domain owns its storage port: it imports no store, and the SQLite store fits it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from sladeck.domain import ports
from sladeck.store import Store, Transaction

DOMAIN = Path(__file__).parents[1] / "src" / "sladeck" / "domain"
FORBIDDEN = ("sqlite3", "sqlite_utils", "sladeck.store", "textual")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_domain_imports_no_storage() -> None:
    found = {f"{path.name}: {name}" for path in sorted(DOMAIN.glob("*.py"))
             for name in _imports(path)
             if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)}
    assert found == set()


def _methods(protocol: type) -> dict[str, inspect.Signature]:
    out = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object, ports.Protocol) or not getattr(klass, "_is_protocol", False):
            continue
        for name, value in vars(klass).items():
            if callable(value) and not name.startswith("_"):
                out[name] = inspect.signature(value)
    return out


@pytest.mark.parametrize(("implementation", "protocol"), [
    (Store, ports.Storage), (Transaction, ports.WriteTransaction),
    (Transaction, ports.ImportTransaction)])
def test_the_sqlite_store_implements_every_method_of_the_port(implementation: type,
                                                              protocol: type) -> None:
    """Same names, and every parameter the port declares, of the same kind, in order."""
    for name, declared in _methods(protocol).items():
        assert hasattr(implementation, name), f"{implementation.__name__} lacks {name}"
        actual = list(inspect.signature(getattr(implementation, name)).parameters.values())
        for want, have in zip(declared.parameters.values(), actual, strict=False):
            assert (want.name, want.kind) == (have.name, have.kind), (name, want, have)
        assert len(actual) >= len(declared.parameters), name


def test_a_store_is_a_storage_and_its_transaction_an_import_transaction(store: Store) -> None:
    assert isinstance(store, ports.Storage)
    with store.write() as tx:
        assert isinstance(tx, ports.ImportTransaction)


def test_every_port_method_says_its_contract() -> None:
    for protocol in (ports.Storage, ports.WriteTransaction, ports.ImportTransaction):
        for name in _methods(protocol):
            assert inspect.getdoc(getattr(protocol, name)), f"{protocol.__name__}.{name}"
