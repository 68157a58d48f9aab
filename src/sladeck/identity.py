"""Who is acting: the OS account from the uid, plus an optional display name."""

from __future__ import annotations

import os
import pwd
import unicodedata

from sladeck.domain.model import Actor
from sladeck.errors import Refused

MAX_NAME = 40  # characters: `name (account)` keeps the account in view
# Control, format (bidi overrides, zero-width) and surrogate characters: a display name
# is plain text, refused rather than trimmed, so what is recorded is what was typed.
_NOT_PLAIN = frozenset(("Cc", "Cf", "Cs"))


def os_account() -> str:
    """The account running this process, from its uid (USER and LOGNAME are not trusted)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


def display_name(given: str | None) -> str | None:
    """`--as` / SLADECK_USER as recorded: spacing collapsed to single spaces (newlines
    and tabs included); None when blank. Refused (one line) when it holds a control or
    format character or is longer than MAX_NAME, so no name can push the account, shown
    after it, out of view or off its line."""
    name = " ".join((given or "").split())
    if not name:
        return None
    what = "display name (--as or SLADECK_USER)"
    for char in name:
        kind = unicodedata.category(char)
        if kind == "Cs":
            raise Refused(f"{what} is not valid UTF-8")
        if kind in _NOT_PLAIN:
            raise Refused(f"{what} contains the control or format character "
                          f"U+{ord(char):04X}; use plain text")
    if len(name) > MAX_NAME:
        raise Refused(f"{what} is {len(name)} characters long; the limit is {MAX_NAME}")
    return name


def current_actor(display: str | None = None, account: str | None = None) -> Actor:
    """The OS account (or `account`, a server's authenticated role) and the display name."""
    return Actor(account or os_account(), display_name(display))
