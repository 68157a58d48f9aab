"""Who is acting: the OS account from the uid, plus an optional display name."""

from __future__ import annotations

import os
import pwd

from sladeck.domain.model import Actor


def os_account() -> str:
    """The account running this process, from its uid (USER and LOGNAME are not trusted)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


def current_actor(display_name: str | None = None) -> Actor:
    name = (display_name or "").strip() or None
    return Actor(os_account(), name)
