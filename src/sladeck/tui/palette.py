"""Textual's command palette, with its page keys guarded.

In Textual 8.2.8 `OptionList._move_page` looks the highlighted option up in a map of
lines that is built only once the list has a size. The palette highlights its first
command before its first layout, so ctrl+p and PageDown (or PageUp) read together — a
held key, a paste, a busy host — raised `KeyError: 0` and ended the app. Until the
list is laid out the page keys do nothing here; afterwards they page as Textual's do.
"""

from __future__ import annotations

from textual.command import CommandList
from textual.command import CommandPalette as TextualPalette

_PAGE_MOVES = (("page_up",), ("page_down",))


class CommandPalette(TextualPalette):
    """The palette `SladeckApp` opens (for its commands and for themes)."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "command_list" and parameters in _PAGE_MOVES:
            found = self.query(CommandList)
            if not found or not found.first().scrollable_content_region:
                return False  # no lines to page through yet
        return super().check_action(action, parameters)
