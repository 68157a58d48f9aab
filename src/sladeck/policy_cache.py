"""The parsed-policy cache: a policy text read once starts the next command without
YAML or validation.

Measured (shipped policy, best of 21 fresh processes on the 2-core test machine, each
having already imported what a start imports anyway, platformdirs included):
`load_policy()` from this cache 4.2 ms, parsing and validating the text 51 ms (the
YAML import, the parse and the validator's first run); warm, in one process, 1.6 ms
against 12 ms. So about 45 ms of every command's and the dashboard's start.

One file per policy text. Inside, the policy and a stamp: sladeck's version, the
files of every module that parses or validates or builds what is kept (VALIDATORS:
a changed parser or validator never reads an old result) and Python's version; the
file is believed only if both the stamp and the policy's own text equal today's
exactly, so its name (a CRC of the text and the stamp) need only find it: no
cryptographic digest, and no OpenSSL loaded (0.6 MiB) by a start. Written privately
(0600 in a 0700 folder) and read only when still private and ours, through an
unpickler that builds nothing but the classes named in SAFE_GLOBALS, one by one.
Anything unexpected means a normal parse: the cache can only make a start faster.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sladeck.policy import Policy

VALIDATORS = ("policy.py", "policy_file.py", "policy_cache.py")  # beside this file
# Everything a pickled policy holds, by exact name: never a dotted path to elsewhere.
SAFE_GLOBALS = frozenset({("datetime", "time"), ("datetime", "timedelta"),
                          (__name__, "_proxy")} | {
    ("sladeck.policy", name) for name in (
        "Policy", "Severity", "Tier", "EscalationTarget", "Item", "Trigger", "LevelContact",
        "Availability", "ManagementContact", "NamedContact", "BusinessHours",
        "Notifications", "Intake")})


def _proxy(items: dict[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(items)


def cache_file(source: str) -> tuple[Path, tuple[str, ...]] | None:
    """Where the parsed `source` is kept, and the stamp it is kept with."""
    import sys
    import zlib

    import platformdirs

    from sladeck import __version__

    try:
        here = Path(__file__).parent
        files = [(here / name).stat() for name in VALIDATORS]
        stamp = (__version__, sys.version,
                 *(f"{f.st_mtime_ns}:{f.st_size}" for f in files))
        text = "\0".join((*stamp, source)).encode("utf-8", "surrogatepass")
        folder = Path(platformdirs.user_cache_dir("sladeck"))
    except (OSError, ValueError, RuntimeError):
        return None
    # No home to expand (an account without a passwd entry): no cache, rather than a
    # folder named "~" wherever the command was started.
    if not folder.is_absolute():
        return None
    name = f"policy-{zlib.crc32(text):08x}{zlib.adler32(text):08x}.pickle"
    return folder / name, stamp


def _private(path: Path) -> bool:
    info = path.stat()
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def cached(source: str) -> Policy | None:
    """The policy `source` parses to, if a private cache file of today's code holds it."""
    import pickle

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in SAFE_GLOBALS:
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"{module}.{name} is not a policy object")

    found = cache_file(source)
    if found is None:
        return None
    path, stamp = found
    try:
        if not (_private(path) and _private(path.parent)):
            return None
        with path.open("rb") as f:
            kept_stamp, policy = Unpickler(f).load()
    except Exception:  # missing, unreadable, old or foreign: parse instead
        return None
    if kept_stamp == stamp and isinstance(policy, Policy) and policy.source == source:
        return policy
    return None


def keep(policy: Policy) -> None:
    """Keep `policy`, parsed, for the next start (silently not, where it cannot)."""
    import pickle
    import tempfile

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, MappingProxyType):
                return _proxy, (dict(obj),)
            return NotImplemented

    found = cache_file(policy.source)
    if found is None:
        return
    path, stamp = found
    try:
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        if not _private(path.parent):
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".policy-")  # 0600
        try:
            with os.fdopen(fd, "wb") as f:
                Pickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump((stamp, policy))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:  # a read-only home, a full disk: the next start parses again
        return
