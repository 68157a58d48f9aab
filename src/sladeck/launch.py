"""The `sladeck` command's entry point: a quick start for the dashboard.

Two things make the dashboard's start cheaper, neither visible to anyone:

- A command line that only opens the dashboard (`sladeck`, with at most `--db`,
  `--policy` and `--as`) is read here, as click reads it, and never imports click or
  builds the sub-commands: ~3 % of a start's instructions and 1.9 MiB of every
  dashboard. Anything else, help and every mistake included, goes to `cli` untouched.
- Start-up (Python importing Textual and sladeck, then the first frame) makes hundreds
  of thousands of long-lived objects and almost no cyclic garbage, yet the collector
  walks them again and again as they are made: about a seventh of the dashboard's CPU
  before its first frame, at 10,000 open incidents. So the collector is off from here
  until the dashboard's first frame is drawn (`SladeckApp`) or a sub-command starts
  (`cli.cli`), which turn it back on. Reference counting frees everything else as usual.
  Should the first frame never settle, `session.open_dashboard` has a timer turn it
  back on after a few seconds anyway.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from sladeck.runtime import collector_off_for_startup
from sladeck.session import ENV_DB, ENV_POLICY, ENV_USER, Settings

_OPTIONS = {"--db": ("db", ENV_DB), "--policy": ("policy", ENV_POLICY),
            "--as": ("name", ENV_USER)}


def dashboard_settings(args: Sequence[str], environ: Mapping[str, str]) -> Settings | None:
    """The settings `args` open the dashboard with, as click would read them; None for
    any other command line (a sub-command, help, a mistake), which click must read."""
    given: dict[str, str] = {}
    rest = list(args)
    while rest:
        option, eq, value = rest.pop(0).partition("=")
        if option not in _OPTIONS:
            return None
        if not eq:
            if not rest:
                return None  # click says what is missing
            value = rest.pop(0)
        given[_OPTIONS[option][0]] = value  # the last one given wins, as in click
    for field, env in _OPTIONS.values():
        if field not in given and environ.get(env):  # click ignores an empty variable
            given[field] = environ[env]
    return Settings(**given)


def main() -> None:
    collector_off_for_startup()
    settings = dashboard_settings(sys.argv[1:], os.environ)
    if settings is None:
        from sladeck.cli import main as cli_main

        cli_main()
        return
    from sladeck.session import failure, open_dashboard

    try:
        open_dashboard(settings)
    except BaseException as exc:  # what is not a failure to tell, `failure` re-raises
        sys.exit(failure(exc))
    sys.exit(0)
