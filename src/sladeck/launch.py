"""The `sladeck` command's entry point: start-up without the cycle collector.

Start-up (Python importing click, Textual and sladeck, then the first frame) makes
hundreds of thousands of long-lived objects and almost no cyclic garbage, yet the
collector walks them again and again as they are made: about a seventh of the
dashboard's CPU before its first frame, at 10,000 open incidents. So the collector is
off from here until the dashboard's first frame is drawn (`SladeckApp`) or a
sub-command starts (`cli.cli`), which turn it back on. Reference counting still
frees everything else as usual.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from sladeck.cli import main as cli_main

    cli_main()
