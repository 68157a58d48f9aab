"""A helper every screen uses, kept apart so the queue needs neither forms nor detail."""

from __future__ import annotations

from textual.widget import Widget


def steady_cursors(screen: Widget) -> None:
    """Stop text cursors blinking when the app asks (snapshots and screenshots are stable)."""
    if not getattr(screen.app, "cursor_blink", True):
        for widget in screen.query("Input, TextArea"):
            widget.cursor_blink = False  # type: ignore[attr-defined]
