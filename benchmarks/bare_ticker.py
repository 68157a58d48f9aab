"""Baseline: a bare Textual app whose one label changes every second (idle cost)."""

import time

from textual.app import App, ComposeResult
from textual.widgets import Label


class BareTicker(App[None]):
    def compose(self) -> ComposeResult:
        yield Label("BARE-READY", id="clock")

    def on_mount(self) -> None:
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        self.query_one("#clock", Label).update(f"BARE-READY {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    BareTicker().run()
