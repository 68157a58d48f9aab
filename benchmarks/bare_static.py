"""Baseline: the barest Textual app, one Static (first frame and memory)."""

from textual.app import App, ComposeResult
from textual.widgets import Static


class BareStatic(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("BARE-READY: a bare Textual app showing one Static")


if __name__ == "__main__":
    BareStatic().run()
