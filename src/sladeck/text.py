"""One sanitiser for every piece of user text before it reaches a terminal.

Titles, notes and handoff fields are stored exactly as given; when shown, control
characters (C0, DEL, C1), bidi overrides and other invisible format characters
are made visible as escapes, so no user text can move the cursor, rename a tmux
pane, write the clipboard (OSC 52) or reorder what a person reads.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e"
                     r"\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code > 0xFFFF:
        return f"\\U{code:08x}"
    return f"\\u{code:04x}"


def visible(text: str | None, *, multiline: bool = False) -> str:
    """`text` with every control/format character shown as an escape (`\\x1b`).

    With `multiline`, newlines are kept and tabs become spaces; otherwise a
    newline shows as `\\n` so a title stays on one line.
    """
    if not text:
        return ""
    if multiline:
        text = text.replace("\r\n", "\n").replace("\t", "    ")
        return "\n".join(_UNSAFE.sub(_escape, line) for line in text.split("\n"))
    return _UNSAFE.sub(_escape, text)


def one_line(text: str | None, width: int | None = None) -> str:
    """Sanitised, on one line, cut to `width` with an ellipsis."""
    shown = visible(text)
    if width is not None and len(shown) > width:
        return shown[: max(0, width - 1)] + "…"
    return shown
