"""The `sladeck` command: each sub-command parses, calls one action, prints.

Exit status: 0 success, 1 refused (validation, missing handoff, conflict, unknown
incident), 2 usage error. Errors are one line on stderr starting `sladeck: error:`.
Importing this module never imports Textual: only the dashboard does.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sladeck import __version__
from sladeck.errors import SladeckError
from sladeck.runtime import collector_back, collector_paused
from sladeck.session import (
    ENV_DB,
    ENV_POLICY,
    ENV_USER,
    Session,
    Settings,
    failure,
    open_dashboard,
    say_error,
)


def _remember(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        # Given on the group and on the sub-command: the command line wins over the
        # environment variable the sub-command's option would otherwise fall back to.
        settings = ctx.ensure_object(Settings)
        from_line = ctx.get_parameter_source(param.name or "") == \
            click.core.ParameterSource.COMMANDLINE
        if value is not None and (from_line or getattr(settings, field) is None):
            setattr(settings, field, value)
        return value
    return callback


def common_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--db/--policy/--as on every command (sqlite-utils' composed-decorator habit)."""
    for option in reversed((
        click.option("--db", "db", metavar="PATH", envvar=ENV_DB, expose_value=False,
                     callback=_remember("db"), is_eager=True,
                     help=f"Database file, or a postgresql:// URL (env {ENV_DB}; default: "
                     "a file in your data directory)."),
        click.option("--policy", "policy", metavar="PATH", envvar=ENV_POLICY,
                     expose_value=False, callback=_remember("policy"), is_eager=True,
                     help=f"Policy file (env {ENV_POLICY}; default: the built-in policy.yaml)."),
        click.option("--as", "as_name", metavar="NAME", envvar=ENV_USER, expose_value=False,
                     callback=_remember("name"), is_eager=True,
                     help=f"Display name recorded beside your account (env {ENV_USER})."),
    )):
        f = option(f)
    return f


def session() -> Session:
    """The command's session; once the command has acted, the notices its changes owe
    are recorded (SPEC §6: whichever process sees them first)."""
    ctx = click.get_current_context()
    s = Session(ctx.ensure_object(Settings))

    def after() -> None:
        if not s.acted:  # a read-only command (report, list ...) needs no service module
            return
        from sladeck.service import notices_after_command

        notices_after_command(s)
    ctx.call_on_close(after)
    return s


def command(group: click.Group, name: str | None = None, **kwargs: Any
            ) -> Callable[[Callable[..., Any]], click.Command]:
    def decorate(f: Callable[..., Any]) -> click.Command:
        return group.command(name, **kwargs)(common_options(f))
    return decorate


class IncidentRef(click.ParamType):
    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> int:
        from sladeck.domain.model import parse_ref

        if isinstance(value, int):
            return value
        parsed = parse_ref(str(value))
        if parsed is None or parsed > MAX_ID:
            self.fail(f"{value!r} is not an incident id (write 42 or INC-42)", param, ctx)
        return parsed


MAX_ID = 2**63 - 1  # SQLite's largest integer: anything above cannot be looked up
INCIDENT = IncidentRef()


def emit_json(value: Any) -> None:
    """One JSON document; a list is written one compact object per line (the C encoder:
    indenting 10,000 incidents with the pure-Python one took over a second)."""
    # ensure_ascii: no raw control, C1 or bidi character from user text reaches a terminal.
    if isinstance(value, list):
        body = ",\n".join(json.dumps(item, ensure_ascii=True) for item in value)
        click.echo(f"[\n{body}\n]" if value else "[]")
    else:
        click.echo(json.dumps(value, indent=2, ensure_ascii=True))


def say(message: str) -> None:
    from sladeck.text import visible

    click.echo(visible(message))


def parse_fields(pairs: tuple[str, ...], file: str | None, what: str) -> dict[str, str]:
    """--field key=value pairs, or a YAML file of key: text (read as plain text)."""
    if pairs and file:
        raise click.UsageError(f"give --field or a {what} file, not both")
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"--field {pair!r} is not key=value")
        fields[key.strip()] = value
    if file:
        import yaml

        try:
            text = Path(file).read_text(encoding="utf-8") if file != "-" else sys.stdin.read()
            data = yaml.load(text, Loader=_text_loader())  # every value stays text, or None
        except OSError as exc:
            raise SladeckError(f"{file}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise SladeckError(f"{file}: not UTF-8 text") from None
        except RecursionError:  # [[[[… a hundred thousand deep
            raise SladeckError(f"{file}: invalid YAML: nested too deeply") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise SladeckError(f"{file}{line}: invalid YAML: "
                               f"{getattr(exc, 'problem', None) or exc}") from None
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in data.items()):
            raise SladeckError(f"{file}: must be a mapping of field: text")
        # `~`, `null` or nothing is a field left empty: the action names it as missing.
        fields.update({k: v or "" for k, v in data.items()})
    return fields


def _text_loader() -> type:
    """A YAML loader that keeps every scalar as text except a plain `~`, `null` or nothing,
    which is None (quoted, "null" stays text)."""
    import re

    import yaml

    class TextLoader(yaml.BaseLoader):
        pass

    TextLoader.add_implicit_resolver("tag:yaml.org,2002:null",
                                     re.compile(r"^(?:~|null|Null|NULL|)$"),
                                     ["~", "n", "N", ""])
    TextLoader.add_constructor("tag:yaml.org,2002:null", lambda loader, node: None)
    return TextLoader


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.version_option(__version__, prog_name="sladeck")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """sladeck: an incident escalation desk for the terminal.

    With no command, opens the live dashboard on the database.
    """
    ctx.ensure_object(Settings)
    if ctx.invoked_subcommand is not None:
        collector_back()  # off for start-up only (launch.py); an import may run for minutes
    else:
        open_dashboard(ctx.ensure_object(Settings))


def policy_key(s: Session, incident_id: int, text: str, what: str) -> str:
    """The severity or level `text` names (in any case) in the incident's own policy."""
    incident = s.store.incident(incident_id)
    if incident is None:
        return text  # the action itself says there is no such incident
    policy = s.policy_of(incident)
    return policy.severity_key(text) if what == "severity" else policy.level_key(text)


def wall_clock() -> Any:
    """The clock of commands that read no database (tests replace it with a FixedClock)."""
    from sladeck.clock import SystemClock

    return SystemClock()


def filter_key(s: Session, what: str, text: str) -> str:
    """A `list` filter's key as the current policy spells it (in any case), or as typed
    when incidents stored under another policy use it; otherwise refused, naming the
    choices (a typo must not read as "no incidents")."""
    lookup = s.policy.severity_key if what == "severity" else s.policy.level_key
    try:
        return lookup(text)
    except SladeckError:
        if s.store.incidents(None, **{what: text}):
            return text
        raise


@command(cli, "board")
def board_cmd() -> None:
    """The read-only board for a stand-up screen: large risk counts, the queue and the
    last 24 hours, live. Nothing can be changed from it (run `sladeck` to act)."""
    open_dashboard(click.get_current_context().ensure_object(Settings), board=True)


@command(cli, "open")
@click.option("--severity", required=True, metavar="P", help="Severity (P0-P3).")
@click.option("--title", required=True, help="One line saying what is wrong.")
@click.option("--description", default="", help="More detail.")
@click.option("--service", default="", help="The affected service.")
@click.option("--dedup-key", default=None, help="Alerts with this key repeat one incident.")
@click.option("--external-ref", default=None, help="A Jira key or issue URL.")
@click.option("--json", "as_json", is_flag=True, help="Print the incident as JSON.")
def open_cmd(severity: str, title: str, description: str, service: str, dedup_key: str | None,
             external_ref: str | None, as_json: bool) -> None:
    """Open an incident and print its id."""
    from sladeck.domain.actions import open_incident
    from sladeck.report import incident_json

    s = session()
    out = open_incident(s.desk, title=title, severity=s.policy.severity_key(severity),
                        description=description,
                        service=service, dedup_key=dedup_key, external_ref=external_ref)
    if as_json:
        emit_json(incident_json(out.incident, s.policy_of(out.incident), s.clock.now()))
    else:
        click.echo(out.incident.ref)
        if out.event is not None and out.event.kind == "repeated":
            click.echo(out.message, err=True)


@command(cli, "ack")
@click.argument("incident_id", type=INCIDENT)
def ack_cmd(incident_id: int) -> None:
    """Acknowledge an incident at its current level."""
    from sladeck.domain.actions import acknowledge

    say(acknowledge(session().desk, incident_id).message)


@command(cli, "escalate")
@click.argument("incident_id", type=INCIDENT)
@click.option("--to", "to", required=True, metavar="LEVEL", help="Target level, e.g. L3.")
@click.option("--trigger", required=True, metavar="KEY|other", help="Why (a trigger key).")
@click.option("--reason", default="", help="Needed with --trigger other.")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE", help="A handoff field.")
@click.option("--handoff-file", type=click.Path(dir_okay=False), default=None,
              help="YAML file of handoff field: text.")
@click.option("--assign", "assignee", default=None, metavar="NAME",
              help="The new owner at the target level (else the incident is unassigned).")
def escalate_cmd(incident_id: int, to: str, trigger: str, reason: str, fields: tuple[str, ...],
                 handoff_file: str | None, assignee: str | None) -> None:
    """Escalate to a higher level with the handoff that level needs; ownership moves to
    that level (the assignee is cleared unless --assign names the new owner)."""
    from sladeck.domain.actions import escalate

    handoff = parse_fields(fields, handoff_file, "--handoff-file")
    s = session()
    say(escalate(s.desk, incident_id, to=policy_key(s, incident_id, to, "level"),
                 trigger=trigger, reason=reason, fields=handoff, assignee=assignee).message)


@command(cli, "note")
@click.argument("incident_id", type=INCIDENT)
@click.argument("text")
def note_cmd(incident_id: int, text: str) -> None:
    """Add a note to an incident's timeline."""
    from sladeck.domain.actions import add_note

    say(add_note(session().desk, incident_id, text).message)


@command(cli, "assign")
@click.argument("incident_id", type=INCIDENT)
@click.argument("name")
def assign_cmd(incident_id: int, name: str) -> None:
    """Assign an incident to someone ("" to unassign)."""
    from sladeck.domain.actions import assign

    say(assign(session().desk, incident_id, name).message)


@command(cli, "severity")
@click.argument("incident_id", type=INCIDENT)
@click.argument("severity")
@click.option("--reason", required=True, help="Why the severity changes.")
def severity_cmd(incident_id: int, severity: str, reason: str) -> None:
    """Change an incident's severity; every clock follows."""
    from sladeck.domain.actions import change_severity

    s = session()
    say(change_severity(s.desk, incident_id, policy_key(s, incident_id, severity, "severity"),
                        reason=reason).message)


@command(cli, "resolve")
@click.argument("incident_id", type=INCIDENT)
@click.option("--summary", required=True, help="What fixed it.")
@click.option("--check", "checks", multiple=True, required=True, metavar="all|KEY",
              help="A resolution checklist item done, or `all`.")
def resolve_cmd(incident_id: int, summary: str, checks: tuple[str, ...]) -> None:
    """Resolve with a summary and the whole resolution checklist."""
    from sladeck.domain.actions import resolve

    done: list[str] | str = "all" if "all" in checks else list(checks)
    say(resolve(session().desk, incident_id, summary=summary, checks=done).message)


@command(cli, "reopen")
@click.argument("incident_id", type=INCIDENT)
@click.option("--reason", required=True, help="Why it is not over.")
def reopen_cmd(incident_id: int, reason: str) -> None:
    """Reopen a resolved or closed incident at its level."""
    from sladeck.domain.actions import reopen

    say(reopen(session().desk, incident_id, reason=reason).message)


@command(cli, "review")
@click.argument("incident_id", type=INCIDENT)
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE", help="A review field.")
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="YAML file of review field: text.")
def review_cmd(incident_id: int, fields: tuple[str, ...], file: str | None) -> None:
    """File the post-incident review; closes the incident."""
    from sladeck.domain.actions import file_review

    say(file_review(session().desk, incident_id, parse_fields(fields, file, "--file")).message)


@cli.group("follow-up")
def follow_up_group() -> None:
    """Follow-up actions of resolved incidents."""


@command(follow_up_group, "add")
@click.argument("incident_id", type=INCIDENT)
@click.option("--kind", required=True, help="A follow-up kind from the policy.")
@click.option("--description", required=True)
@click.option("--owner", required=True)
@click.option("--due", default=None, metavar="YYYY-MM-DD")
def follow_up_add(incident_id: int, kind: str, description: str, owner: str,
                  due: str | None) -> None:
    """Add a follow-up action to a resolved incident."""
    from sladeck.domain.actions import add_follow_up

    say(add_follow_up(session().desk, incident_id, kind=kind, description=description,
                      owner=owner, due=due).message)


@command(follow_up_group, "done")
@click.argument("follow_up_id", type=click.IntRange(1, MAX_ID))
def follow_up_done(follow_up_id: int) -> None:
    """Mark a follow-up action done."""
    from sladeck.domain.actions import complete_follow_up

    say(complete_follow_up(session().desk, follow_up_id).message)


@command(follow_up_group, "list")
@click.option("--view", type=click.Choice(["open", "overdue", "mine", "all"]), default="open",
              show_default=True, help="open: not done; overdue: not done, past due; mine: "
              "not done and yours; all: done ones too.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of follow-up objects.")
def follow_up_list(view: str, as_json: bool) -> None:
    """Follow-ups across incidents, overdue first, then by due date."""
    from sladeck.domain.model import format_ref, to_iso
    from sladeck.domain.standup import follow_ups_shown
    from sladeck.text import visible

    s = session()
    today = s.clock.now().astimezone().date()
    shown = follow_ups_shown(s.store.follow_up_entries(include_done=view == "all"), view,
                             (s.actor.account, s.actor.name or ""), today)
    if as_json:
        emit_json([{"id": e.follow_up.id, "incident": format_ref(e.follow_up.incident_id),
                    "incident_title": e.title, "severity": e.severity, "state": e.state,
                    "kind": e.follow_up.kind, "description": e.follow_up.description,
                    "owner": e.follow_up.owner, "due": e.follow_up.due,
                    "overdue": e.overdue(today), "created_at": to_iso(e.follow_up.created_at),
                    "done_at": to_iso(e.follow_up.done_at) if e.follow_up.done_at else None,
                    "done_by": e.follow_up.done_by} for e in shown])
        return
    if not shown:
        click.echo(f"No follow-ups ({view}).")
    for e in shown:
        f = e.follow_up
        when = "done" if e.done else "OVERDUE" if e.overdue(today) else "due" if f.due else ""
        due = f"{when} {f.due}" if f.due and not e.done else when
        click.echo(visible(f"#{f.id:<4} {e.ref:<9} {e.severity:<3} {due:<18} {f.owner:<12} "
                           f"{f.kind}: {f.description}").rstrip())


@command(cli, "list")
@click.option("--all", "show_all", is_flag=True, help="Include resolved and closed incidents.")
@click.option("--state", type=click.Choice(["open", "acknowledged", "resolved", "closed"]))
@click.option("--severity", metavar="P")
@click.option("--level", metavar="L")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of incident objects.")
def list_cmd(show_all: bool, state: str | None, severity: str | None, level: str | None,
             as_json: bool) -> None:
    """List incidents in queue order (risk, severity, nearest deadline)."""
    from sladeck.domain.clocks import assess
    from sladeck.domain.model import ACTIVE_STATES
    from sladeck.report import incident_json, queue_line

    with collector_paused():  # thousands of acyclic rows built
        s = session()
        states = (state,) if state else None if show_all else ACTIVE_STATES
        now = s.clock.now()
        incidents = s.store.incidents(
            states, severity=severity and filter_key(s, "severity", severity),
            level=level and filter_key(s, "level", level))
        histories = s.store.clock_histories(states)
        assessed = [(i, assess(i, s.policy_of(i), now, histories.get(i.id)))
                    for i in incidents]
        assessed.sort(key=lambda pair: pair[1].sort_key(pair[0], s.policy_of(pair[0])))
        if as_json:
            emit_json([incident_json(i, s.policy_of(i), now, a) for i, a in assessed])
            return
        if not assessed:
            click.echo("no incidents", err=True)
        for incident, a in assessed:
            click.echo(queue_line(incident, s.policy_of(incident), now, a))


@command(cli, "show")
@click.argument("incident_id", type=INCIDENT)
@click.option("--json", "as_json", is_flag=True, help="The incident with events and handoffs.")
def show_cmd(incident_id: int, as_json: bool) -> None:
    """Show one incident: clocks, timeline, handoffs, checklists, review."""
    from sladeck.errors import NotFound
    from sladeck.report import detail_json, incident_markdown

    s = session()
    detail = s.store.detail(incident_id)
    if detail is None:
        raise NotFound(f"INC-{incident_id} does not exist")
    policy = s.policy_of(detail.incident)
    if as_json:
        emit_json(detail_json(detail, policy, s.clock.now()))
    else:
        click.echo(incident_markdown(detail, policy, s.clock.now()))


@command(cli, "import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--skip-invalid", is_flag=True, help="Write the good lines, report the rest.")
@click.option("--format", "fmt", type=click.Choice(["ndjson", "alertmanager", "grafana"]),
              default="ndjson", help="NDJSON lines (default), or webhook payloads of "
              "Alertmanager or Grafana, one a line or one document.")
def import_cmd(file: str, skip_invalid: bool, fmt: str) -> None:
    """Import alerts from NDJSON or webhook payloads (whole file or nothing)."""
    from sladeck.domain.ingest import import_ndjson
    from sladeck.text import visible

    if fmt != "ndjson" and skip_invalid:
        raise click.UsageError("--skip-invalid reads NDJSON only")
    try:  # read a line at a time: a line over 1 MiB (`/dev/zero`) is refused at once
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise SladeckError(f"{file}: cannot read: {exc.strerror}") from None
    s = session()
    with stream if file != "-" else contextlib.nullcontext(stream), collector_paused():
        if fmt == "ndjson":
            report = import_ndjson(s.desk, stream, "-" if file == "-" else file,
                                   skip_invalid=skip_invalid)
        else:
            from sladeck.domain.intake import import_payloads

            report = import_payloads(s.desk, stream, "-" if file == "-" else file, fmt)
    for problem in report.problems:
        click.echo(f"sladeck: skipped: {visible(problem)}", err=True)
    click.echo(f"imported {report.opened} new, {report.repeated} repeated"
               + (f", {report.late} late" if report.late else "")
               + (f", {report.cleared} cleared at source" if report.cleared else "")
               + (f", {report.unmatched} cleared with no incident" if report.unmatched else "")
               + (f", {len(report.problems)} skipped" if report.problems else ""))


@command(cli, "receive")
@click.option("--listen", default="127.0.0.1:9095", show_default=True, metavar="HOST:PORT",
              help="Where to listen (port 0: any free port, printed at start).")
@click.option("--token-file", metavar="PATH",
              help="A file only you can read holding the bearer token senders present.")
@click.option("--no-token", is_flag=True,
              help="Take requests with no token (loopback addresses only).")
@click.option("--max-body", type=click.IntRange(1024, 64 << 20), default=4 << 20,
              show_default=True, metavar="BYTES", help="Larger requests get 413.")
def receive_cmd(listen: str, token_file: str | None, no_token: bool, max_body: int) -> None:
    """Take alerts from Alertmanager and Grafana webhooks (POST /alertmanager, /grafana)."""
    try:
        from sladeck import receive
    except ImportError as exc:
        if exc.name != "aiohttp" and not (exc.name or "").startswith("aiohttp."):
            raise
        raise SladeckError("sladeck receive needs aiohttp: pip install 'sladeck[receive]'"
                           ) from None
    token = receive.token_or_refusal(listen, token_file, no_token)
    s = session()
    if s.policy.intake is None:
        raise SladeckError("the policy has no intake section: add one (see the built-in "
                           "policy.yaml) to map alerts to incidents")
    receive.serve(s.desk, listen, token, max_body=max_body)


@command(cli, "export")
@click.argument("incident_id", type=INCIDENT, required=False)
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "md"]), default="json")
@click.option("--all/--open", "show_all", default=True,
              help="Every incident (default) or only open ones.")
def export_cmd(incident_id: int | None, fmt: str, show_all: bool) -> None:
    """Export incidents (or one) as JSON, CSV or Markdown."""
    from sladeck.domain.clocks import assess
    from sladeck.domain.model import ACTIVE_STATES
    from sladeck.errors import NotFound
    from sladeck.report import (
        detail_json,
        incident_json,
        incident_markdown,
        incidents_csv,
        incidents_markdown,
    )

    with collector_paused():  # thousands of acyclic rows built
        s = session()
        now = s.clock.now()
        if incident_id is not None:
            detail = s.store.detail(incident_id)
            if detail is None:
                raise NotFound(f"INC-{incident_id} does not exist")
            policy = s.policy_of(detail.incident)
            if fmt == "md":
                click.echo(incident_markdown(detail, policy, now))
            elif fmt == "csv":
                click.echo(incidents_csv([incident_json(detail.incident, policy, now, assess(
                    detail.incident, policy, now, detail.clock_history or None))]), nl=False)
            else:
                emit_json(detail_json(detail, policy, now))
            return
        states = None if show_all else ACTIVE_STATES
        histories = s.store.clock_histories(states)
        rows = [incident_json(i, s.policy_of(i), now,
                              assess(i, s.policy_of(i), now, histories.get(i.id)))
                for i in s.store.incidents(states)]
        if fmt == "csv":
            click.echo(incidents_csv(rows), nl=False)
        elif fmt == "md":
            click.echo(incidents_markdown(rows), nl=False)
        else:
            emit_json(rows)


@cli.group("policy")
def policy_group() -> None:
    """Check or apply the escalation policy."""


@command(policy_group, "check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def policy_check(path: str | None) -> None:
    """Validate a policy file (default: the one in use), and say whether its
    notification command would run, and why not."""
    from dataclasses import replace

    from sladeck.hooks import check_report
    from sladeck.policy import default_policy_path, load_policy
    from sladeck.policy_file import disagreements, untimed_triggers
    from sladeck.text import visible

    chosen = path or click.get_current_context().ensure_object(Settings).policy
    policy = load_policy(chosen)
    shown = chosen or "built-in policy.yaml"
    report = check_report(policy.notifications, Path(chosen) if chosen else
                          default_policy_path(), shown, policy.source)
    report = replace(report, errors=(*disagreements(policy, shown), *report.errors),
                     warnings=(*untimed_triggers(policy, shown), *report.warnings))
    click.echo(f"{visible(shown)}: {'refused' if report.errors else 'ok'} "
               f"({len(policy.severities)} severities, "
               f"{len(policy.tiers)} levels, digest {policy.digest[:12]})")
    click.echo(_review_line(policy))
    for line in report.lines:
        click.echo(line)
    for warning in report.warnings:  # the policy stays valid: worth a look, not a refusal
        click.echo(f"sladeck: warning: {visible(warning)}", err=True)
    for error in report.errors:
        say_error(error)
    if report.errors:
        raise click.exceptions.Exit(1)


def _review_line(policy: Any) -> str:
    """The policy's version, owner and next review, a warning once that date has passed
    (on stdout with the rest of the report: the policy stays valid, exit 0)."""
    from sladeck.procedure import review_status
    from sladeck.text import one_line

    today = wall_clock().now().date()
    if policy.review_overdue(today):
        return (f"warning: next review {policy.next_review} has passed "
                f"({(today - policy.next_review_date()).days} days ago): review the "
                f"procedure with its owner, then set next_review · version "
                f"{one_line(policy.version) or '-'} · owner {one_line(policy.owner) or '-'}")
    return review_status(policy, today)


@command(policy_group, "show")
@click.option("--severity", metavar="P", help="Only this severity (e.g. P1).")
@click.option("--level", metavar="L", help="Only this level (e.g. L2).")
def policy_show(severity: str | None, level: str | None) -> None:
    """The escalation procedure as people read it: severities, levels, the response
    matrix, checklists, review, contacts and tools."""
    from sladeck.policy import load_policy
    from sladeck.procedure import show_policy

    policy = load_policy(click.get_current_context().ensure_object(Settings).policy)
    click.echo(show_policy(policy, wall_clock().now().date(),
                           severity=severity and policy.severity_key(severity),
                           level=level and policy.level_key(level)))


@command(policy_group, "apply")
def policy_apply() -> None:
    """Re-base every open incident on the current policy."""
    from sladeck.domain.actions import apply_policy

    outcomes = apply_policy(session().desk)
    for out in outcomes:
        say(out.message)
    click.echo(f"{len(outcomes)} incident(s) re-based")


@command(cli, "contacts")
@click.option("--severity", metavar="P", help="Only management on call for this severity.")
@click.option("--level", metavar="L", help="Only this level's contacts.")
def contacts_cmd(severity: str | None, level: str | None) -> None:
    """Who to call now: level contacts, management available now (business hours as
    the policy sets them), vendors and professional services."""
    from sladeck.policy import load_policy
    from sladeck.procedure import show_contacts

    policy = load_policy(click.get_current_context().ensure_object(Settings).policy)
    click.echo(show_contacts(policy, wall_clock().now(),
                             severity=severity and policy.severity_key(severity),
                             level=level and policy.level_key(level)))


@command(cli, "tick")
@click.argument("incident_id", type=INCIDENT)
@click.argument("checklist")
@click.argument("item")
@click.option("--undo", is_flag=True, help="Untick the item.")
def tick_cmd(incident_id: int, checklist: str, item: str, undo: bool) -> None:
    """Tick a triage or communication checklist item (CHECKLIST: triage, internal for
    the current level, internal.LEVEL, or external.AUDIENCE; see `sladeck show ID`)."""
    from sladeck.domain.actions import tick
    from sladeck.errors import NotFound, Refused
    from sladeck.text import one_line

    s = session()
    incident = s.store.incident(incident_id)
    if incident is None:
        raise NotFound(f"INC-{incident_id} does not exist")
    policy = s.policy_of(incident)
    name = checklist.strip()
    kind, _, rest = name.partition(".")
    kind = kind.lower()
    if kind == "triage" and not rest:
        name = "triage"
    elif kind == "internal":
        name = f"internal.{policy.level_key(rest) if rest else incident.level}"
    elif kind == "external" and rest:
        audience = {a.lower(): a for a in policy.external_communication}.get(rest.lower())
        name = f"external.{audience or rest}"
    choices = ["triage", "internal", *(f"internal.{lv}" for lv in policy.levels),
               *(f"external.{a}" for a in policy.external_communication)]
    if kind == "resolution" and not rest:
        raise Refused("the resolution checklist is ticked by `sladeck resolve "
                      f"{incident.ref} --check KEY`")
    if name not in choices:
        raise Refused(f"unknown checklist '{one_line(checklist, 60)}' "
                      f"(choose {', '.join(choices)})")
    lists = {"triage": policy.checklists.get("triage", ()),
             **{f"internal.{lv}": items for lv, items in policy.internal_communication.items()},
             **{f"external.{a}": items for a, items in policy.external_communication.items()}}
    keys = [i.key for i in lists.get(name, ())]
    key = item.strip().lower() if item.strip().lower() in keys else item
    if key not in keys:
        raise Refused(f"{name} has no item '{one_line(item, 60)}' "
                      f"(choose {', '.join(keys) or 'none: the list is empty'})")
    say(tick(s.desk, incident_id, name, key, done=not undo).message)


class ChainHead(click.ParamType):
    name = "ID:HASH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        from sladeck.verify import Head, parse_head

        if isinstance(value, Head):
            return value
        try:
            return parse_head(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@command(cli, "verify")
@click.option("--expect", "expect", type=ChainHead(), default=None, metavar="ID:HASH",
              help="A head an earlier verify printed: fail unless it is still in the chain.")
def verify_cmd(expect: Any) -> None:
    """Check the hash-chained event log and the state derived from it.

    Prints the chain's head (ID:HASH): record it where the database's writers cannot
    write, and a later `verify --expect ID:HASH` proves that no event up to it was
    changed or removed. The chain alone cannot: anyone who can write the file can
    rewrite an event and recompute every hash after it.
    """
    import sqlite3

    from sladeck.verify import audit, corruption, damaged

    settings = click.get_current_context().ensure_object(Settings)
    try:
        s = session()
        integrity = s.store.integrity_check()
        verdict = audit(s.store, expect) if integrity == "ok" else None
    except (sqlite3.DatabaseError, SladeckError) as exc:
        found = corruption(exc)
        if found is None:
            raise
        from sladeck.session import default_db_path

        say_error(damaged(settings.db or default_db_path(), found))
        raise click.exceptions.Exit(1) from None
    if verdict is None:  # SQLite's own check failed: nothing read from the file is sure
        say_error(damaged(s.db_path, integrity))
        raise click.exceptions.Exit(1)
    if verdict.problems:
        for problem in verdict.problems:
            say_error(problem)
        raise click.exceptions.Exit(1)
    click.echo(f"{s.db_path}: ok ({verdict.events} events, chain intact, state matches)")
    if expect is not None:
        click.echo(f"expected head found as event {verdict.expected_at}: no event up to it "
                   "was changed or removed")
    click.echo(f"head {verdict.head}")


@command(cli, "backup")
@click.argument("dest", type=click.Path(dir_okay=False))
def backup_cmd(dest: str) -> None:
    """Write a consistent copy of the database while others keep working."""
    if Path(dest).exists():
        raise SladeckError(f"{dest} already exists; choose a new file")
    s = session()
    s.store.backup(dest)  # created 0600, or 0660 in a group-shared (setgid) folder
    click.echo(f"backed up {s.db_path} to {dest}")


@command(cli, "migrate")
@click.option("--to", "to", required=True, metavar="URL",
              help="An empty PostgreSQL database: postgresql://ROLE@HOST/DB (no password).")
def migrate_cmd(to: str) -> None:
    """Copy this SQLite database whole to PostgreSQL, then verify the copy.

    Incidents, events with their hash chain, handoffs, checklists, reviews, follow-ups,
    notices and policies: every row, ids kept, in one transaction. The target must be
    empty; nothing is written to it if anything is refused.
    """
    from sladeck.store import check_url, is_server_url
    from sladeck.verify import audit

    if not is_server_url(to):
        raise click.UsageError("--to must be a postgresql:// URL")
    s = session()
    if is_server_url(s.db_path):
        raise SladeckError("migrate copies a SQLite file; the database given is already "
                           "on PostgreSQL (use pg_dump to copy between servers)")
    from sladeck.store.copy import copy_database
    from sladeck.store.postgres import PgStore

    target = PgStore(check_url(to))
    try:
        copied = copy_database(s.store, target)
        verdict = audit(target)
    finally:
        target.close()
    if verdict.problems:
        for problem in verdict.problems:
            say_error(f"{target.path}: {problem}")
        raise click.exceptions.Exit(1)
    click.echo(f"copied {s.db_path} to {target.path}: {copied.get('incidents', 0)} incidents, "
               f"{copied.get('events', 0)} events")
    click.echo(f"{target.path}: ok ({verdict.events} events, chain intact, state matches)")
    click.echo(f"head {verdict.head}")


@command(cli, "report")
@click.option("--since", default=None, metavar="WHEN",
              help="Start: 7d, 12h, 2026-11-01, 08:00 or an ISO time (default: 7d).")
@click.option("--until", default=None, metavar="WHEN", help="End (default: now).")
@click.option("--by", "by", type=click.Choice(["severity", "level", "service", "assignee"]),
              default="severity", show_default=True, help="Group incidents by.")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "csv", "json"]),
              default="text", show_default=True)
def report_cmd(since: str | None, until: str | None, by: str, fmt: str) -> None:
    """MTTA, MTTR, SLA compliance, escalations, reviews and follow-ups of the incidents
    opened in a range (README: Reports)."""
    from sladeck.domain.reports import build_report, report_json, report_range
    from sladeck.reports_out import report_csv, report_markdown, report_text

    s = session()
    start, end = report_range(since, until, s.clock.now(), None)
    r = build_report(s.store, s.store, start, end, by, s.policy.levels)
    if fmt == "json":
        emit_json(report_json(r))
    elif fmt == "csv":
        click.echo(report_csv(r), nl=False)
    else:
        click.echo(report_markdown(r) if fmt == "md" else report_text(r))


@command(cli, "digest")
@click.option("--since", default=None, metavar="WHEN",
              help="Start: 12h, 08:00, 2026-11-01 or an ISO time (default: the last shift "
                   "boundary, reporting.shifts in the policy).")
def digest_cmd(since: str | None) -> None:
    """What happened since the shift began, as Markdown for a chat or a handoff."""
    from sladeck.domain.digest import build_digest
    from sladeck.domain.reports import shift_window
    from sladeck.reports_out import digest_markdown

    s = session()
    start, end, today = shift_window(s.policy, since, s.clock.now())
    click.echo(digest_markdown(build_digest(s.store, s.store, start, end,
                                            tuple(s.policy.severities), today)), nl=False)


@command(cli, "demo")
@click.option("--count", default=30, show_default=True, help="How many incidents.")
@click.option("--seed", default=7, show_default=True, help="Random seed (same seed, same data).")
def demo_cmd(count: int, seed: int) -> None:
    """Fill the database with realistic sample incidents."""
    from sladeck.demo import fill_demo

    s = session()
    if not 1 <= count <= 10_000:
        raise click.UsageError("--count must be between 1 and 10000")
    existing = sum(s.store.counts().values())
    if existing:  # running the README's first command twice must not double the demo
        click.echo(f"{s.db_path}: already holds {existing} incidents; nothing added "
                   "(give a new --db for a fresh demo)")
        return
    made = fill_demo(s.store, s.policy, s.actor, s.clock.now(), count=count, seed=seed)
    click.echo(f"{s.db_path}: {made} demo incidents")


@command(cli, "watch")
@click.option("--once", is_flag=True, help="One pass, then exit (for cron).")
def watch_cmd(once: bool) -> None:
    """Service: record notices, re-pages and run the notification command with no
    dashboard open. One copy per database; SIGTERM or ctrl+c stops it cleanly."""
    from sladeck.policy import default_policy_path
    from sladeck.service import run_watch

    s = Session(click.get_current_context().ensure_object(Settings))
    code = run_watch(s.desk, s.db_path, policy_file=s.policy_file or default_policy_path(),
                     once=once)
    raise click.exceptions.Exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn every failure into one line and an exit status."""
    try:
        code = cli.main(args=argv, prog_name="sladeck", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.UsageError as exc:
        hint = f" (see sladeck {exc.ctx.command_path.partition(' ')[2]} --help)".replace(
            "sladeck  --help", "sladeck --help") if exc.ctx else ""
        say_error(exc.format_message() + hint)
        code = 2
    except click.ClickException as exc:
        say_error(exc.format_message())
        code = 1
    except click.Abort:
        say_error("interrupted")
        code = 130
    except BaseException as exc:  # what is not a failure to tell, `failure` re-raises
        code = failure(exc)
    sys.exit(code if isinstance(code, int) else 0)

