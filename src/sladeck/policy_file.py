"""Reading policy YAML: compose with libyaml, no implicit typing, every problem at once.

The YAML is composed into nodes with *no* implicit typing (every plain scalar is
text), so YAML 1.1 surprises cannot happen: `17:30` stays "17:30", `off` stays
"off", and each key's own type decides what a value means. Explicit tags are
refused, duplicate keys are refused, aliases are refused (an 18 KB text of them
expands to a million nodes), every key is a name a command line can type, and every
problem is reported at once as `FILE:LINE: key.path: what is wrong` (the first
MAX_PROBLEMS of them, then how many more). Loaded only when a policy text has not been
read before (`policy.load_policy` keeps what it parsed).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import date, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from sladeck.errors import PolicyError
from sladeck.policy import (
    DAYS,
    DURATION_RE,
    KEY_RE,
    MAX_DURATION,
    MAX_KEY,
    MAX_POLICY_BYTES,
    MAX_PROBLEMS,
    NAME_RE,
    WORD_UNITS,
    Availability,
    BusinessHours,
    EscalationTarget,
    Intake,
    Item,
    LevelContact,
    ManagementContact,
    NamedContact,
    Notifications,
    Policy,
    Severity,
    Tier,
    Trigger,
    format_duration,
    parse_duration,
)
from sladeck.text import visible


def _duration_hint(text: str) -> str:
    parts = re.findall(r"(\d+)\s*([a-z]+)", text.lower())
    units = [WORD_UNITS.get(u.rstrip("s") if u not in WORD_UNITS else u) for _, u in parts]
    if parts and all(units) and re.fullmatch(r"(\s*\d+\s*[a-z]+\s*(and)?)+", text.lower()):
        return "write " + "".join(f"{n}{u}" for (n, _), u in zip(parts, units, strict=True))
    return "write e.g. 30m, 2h or 2h30m"


# libyaml's parser when present (about 10x faster than the pure-Python one; the
# policy is read at every start), with the same node marks for line numbers.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _NoTagsLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Composes nodes only; no implicit resolution, so every plain scalar is text."""


_NoTagsLoader.yaml_implicit_resolvers = {}

STR, SEQ, MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
_NULLS = {"", "~", "null", "Null", "NULL"}


class _Reader:
    """Walks the node tree, collecting every problem with its line and key path."""

    def __init__(self, filename: str, stored: bool = False) -> None:
        self.filename = filename
        self.stored = stored  # a policy kept in a database: keys added since may be absent
        self.problems: list[str] = []
        self.lines: list[int] = []

    def problem(self, node: yaml.Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        where = f"{path}: " if path else ""
        message = " ".join(message.split())  # one line per problem, whatever the value held
        self.problems.append(f"{self.filename}:{line}: {where}{message}")
        self.lines.append(line)

    def told(self) -> list[str]:
        """The problems to tell: the first MAX_PROBLEMS, then how many more."""
        if len(self.problems) <= MAX_PROBLEMS:
            return self.problems
        more = len(self.problems) - MAX_PROBLEMS
        return [*self.problems[:MAX_PROBLEMS],
                f"{self.filename}:{self.lines[MAX_PROBLEMS]}: and {more} more "
                f"problem{'s' if more > 1 else ''} (fix these first)"]

    def _tag_ok(self, node: yaml.Node, path: str) -> bool:
        if node.tag not in (STR, SEQ, MAP):
            self.problem(node, path, f"YAML tags are not allowed ({node.tag})")
            return False
        return True

    def mapping(self, node: yaml.Node, path: str, required: tuple[str, ...] = (),
                optional: tuple[str, ...] = (), *, any_keys: bool = False,
                one_case: bool = False) -> dict[str, yaml.Node] | None:
        """The mapping's keys and values; with `one_case`, no two keys differ only in
        case (the command line reads them in any case)."""
        if not self._tag_ok(node, path):
            return None
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, "must be a mapping")
            return None
        found: dict[str, yaml.Node] = {}
        folded: dict[str, str] = {}
        for key_node, value in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or not self._tag_ok(key_node, path):
                self.problem(key_node, path, "keys must be plain text")
                continue
            key = key_node.value
            if not NAME_RE.match(key):
                shown = visible(key[:MAX_KEY + 2]) + ("..." if len(key) > MAX_KEY + 2 else "")
                self.problem(key_node, path, f'key "{shown}" is not allowed (letters, digits, '
                             f"_ and -, at most {MAX_KEY}, starting with a letter or digit)")
                continue
            child = f"{path}.{key}" if path else key
            if key in found:
                self.problem(key_node, child, "duplicate key")
            elif one_case and key.lower() in folded:
                self.problem(key_node, child, f'differs from "{folded[key.lower()]}" only in case '
                             "(commands read keys in any case)")
            elif not any_keys and key not in required and key not in optional:
                self.problem(key_node, child, "unknown key")
            else:
                found[key] = value
                folded[key.lower()] = key
        for key in required:
            if key not in found:
                self.problem(node, f"{path}.{key}" if path else key, "missing")
        return found

    def seq(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if not self._tag_ok(node, path):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, path, "must be a list")
            return []
        return list(node.value)

    def scalar(self, node: yaml.Node, path: str) -> str | None:
        if not self._tag_ok(node, path):
            return None
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, path, "must be a single value")
            return None
        return node.value

    def text(self, node: yaml.Node, path: str, *, allow_empty: bool = False) -> str:
        value = self.scalar(node, path)
        if value is None:
            return ""
        if not value.strip() and not allow_empty:
            self.problem(node, path, "must not be empty")
        return value

    def texts(self, node: yaml.Node, path: str) -> tuple[str, ...]:
        return tuple(self.text(n, f"{path}[{i}]") for i, n in enumerate(self.seq(node, path)))

    def duration(self, node: yaml.Node, path: str, *, allow_none: bool = False
                 ) -> timedelta | None:
        value = self.scalar(node, path)
        if value is None:
            return None
        if allow_none and value.strip() == "none":
            return None
        parsed = parse_duration(value)
        if parsed is None and DURATION_RE.match(value.strip()):
            self.problem(node, path, f'"{value}" is too long (at most {format_duration(MAX_DURATION)})')
        elif parsed is None:
            hint = _duration_hint(value)
            if allow_none and hint.startswith("write e.g."):
                hint += ", or none"
            self.problem(node, path, f'"{value}" is not a duration ({hint})')
        return parsed

    def boolean(self, node: yaml.Node, path: str) -> bool:
        written = (self.scalar(node, path) or "").strip()
        value = written.lower()
        if value in ("true", "yes", "on"):
            return True
        if value not in ("false", "no", "off"):
            self.problem(node, path, f'"{written}" is not true or false')
        return False

    def count(self, node: yaml.Node, path: str, most: int = 100) -> int:
        """A whole number from 0 to `most`."""
        value = (self.scalar(node, path) or "").strip()
        if not value.isdigit() or int(value) > most:
            self.problem(node, path, f'"{value}" is not a whole number from 0 to {most}')
            return 0
        return int(value)

    def ratio(self, node: yaml.Node, path: str) -> float:
        value = (self.scalar(node, path) or "").strip()
        try:
            share = float(value[:-1]) / 100 if value.endswith("%") else float(value)
        except ValueError:
            share = -1.0
        if not 0 <= share <= 1:
            self.problem(node, path, f'"{value}" is not a share (write e.g. 25%)')
            return 0.25
        return share

    def items(self, node: yaml.Node, path: str, *, with_help: bool = False,
              extra: tuple[str, ...] = ()) -> tuple[Item, ...]:
        """Keyed items; `extra` names more optional keys, read by the caller."""
        result: list[Item] = []
        seen: set[str] = set()
        for i, child in enumerate(self.seq(node, path)):
            here = f"{path}[{i}]"
            fields = self.mapping(child, here, ("key", "label", "help") if with_help
                                  else ("key", "label"),
                                  (() if with_help else ("help",)) + extra)
            if fields is None:
                continue
            key = self.text(fields["key"], f"{here}.key") if "key" in fields else ""
            if key and not KEY_RE.match(key):
                self.problem(fields["key"], f"{here}.key", f'"{visible(key[:MAX_KEY + 2])}" is '
                             f"not a snake_case key (a-z, 0-9 and _, at most {MAX_KEY})")
            if key in seen:
                self.problem(fields["key"], f"{here}.key", f'"{visible(key)}" is used twice in {path}')
            seen.add(key)
            label = self.text(fields["label"], f"{here}.label") if "label" in fields else ""
            help_ = self.text(fields["help"], f"{here}.help") if "help" in fields else ""
            result.append(Item(key, label, help_))
        return tuple(result)

    def keyed(self, node: yaml.Node, path: str, build: Callable[[yaml.Node, str, str], Any]
              ) -> dict[str, Any]:
        fields = self.mapping(node, path, any_keys=True, one_case=True) or {}
        return {key: build(value, f"{path}.{key}", key) for key, value in fields.items()}


def _severity(r: _Reader, node: yaml.Node, path: str, key: str) -> Severity | None:
    f = r.mapping(node, path, ("name", "definition", "response", "resolution", "escalation",
                               "review_required"), ("business_impact", "examples"))
    if f is None:
        return None
    res = r.mapping(f["resolution"], f"{path}.resolution", ("target", "maximum")) \
        if "resolution" in f else None
    esc = r.mapping(f["escalation"], f"{path}.escalation", ("to", "within"), ("grace",)) \
        if "escalation" in f else None
    get = f.get
    target = r.duration(res["target"], f"{path}.resolution.target") if res and "target" in res \
        else None
    maximum = r.duration(res["maximum"], f"{path}.resolution.maximum") \
        if res and "maximum" in res else None
    within = r.duration(esc["within"], f"{path}.escalation.within") \
        if esc and "within" in esc else None
    grace = r.duration(esc["grace"], f"{path}.escalation.grace") \
        if esc and "grace" in esc else None
    if grace is not None and within:
        r.problem(esc["grace"], f"{path}.escalation.grace",  # type: ignore[index]
                  "applies only to an immediate escalation (within: 0m)")
    if target and maximum and maximum < target:
        r.problem(res["maximum"], f"{path}.resolution.maximum",  # type: ignore[index]
                  "is shorter than the resolution target")
    return Severity(
        key=key,
        name=r.text(f["name"], f"{path}.name") if "name" in f else key,
        business_impact=r.text(get("business_impact"), f"{path}.business_impact")
        if "business_impact" in f else "",
        definition=r.text(f["definition"], f"{path}.definition") if "definition" in f else "",
        examples=r.texts(f["examples"], f"{path}.examples") if "examples" in f else (),
        response=(r.duration(f["response"], f"{path}.response") if "response" in f else None)
        or timedelta(0),
        resolution_target=target or timedelta(0),
        resolution_maximum=maximum or timedelta(0),
        escalate_to=r.text(esc["to"], f"{path}.escalation.to") if esc and "to" in esc else "",
        escalate_within=within or timedelta(0),
        review_required=r.boolean(f["review_required"], f"{path}.review_required")
        if "review_required" in f else False,
        escalate_grace=grace,
    )


def _tier(r: _Reader, node: yaml.Node, path: str, key: str) -> Tier | None:
    f = r.mapping(node, path, ("name", "scope", "escalate_after"),
                  ("response", "resolution", "responsibilities", "common_issues",
                   "escalation_criteria"))
    if f is None:
        return None

    def lst(name: str) -> tuple[str, ...]:
        return r.texts(f[name], f"{path}.{name}") if name in f else ()

    return Tier(
        key=key,
        name=r.text(f["name"], f"{path}.name") if "name" in f else key,
        scope=r.text(f["scope"], f"{path}.scope") if "scope" in f else "",
        response=(r.duration(f["response"], f"{path}.response") if "response" in f else None)
        or timedelta(0),
        resolution=r.duration(f["resolution"], f"{path}.resolution", allow_none=True)
        if "resolution" in f else None,
        escalate_after=r.duration(f["escalate_after"], f"{path}.escalate_after", allow_none=True)
        if "escalate_after" in f else None,
        responsibilities=lst("responsibilities"),
        common_issues=lst("common_issues"),
        escalation_criteria=lst("escalation_criteria"),
    )


def _triggers(r: _Reader, node: yaml.Node, path: str) -> tuple[Trigger, ...]:
    """A level's triggers: keyed items, each with an optional `after` duration (the time
    a trigger such as "not resolved within 30 minutes" names)."""
    afters: list[timedelta | None] = []
    children = node.value if isinstance(node, yaml.SequenceNode) else []  # items() tells
    for i, child in enumerate(children):
        fields = {k.value: v for k, v in child.value if isinstance(k, yaml.ScalarNode)} \
            if isinstance(child, yaml.MappingNode) else {}
        after = r.duration(fields["after"], f"{path}[{i}].after") if "after" in fields else None
        if after is not None and not after:
            r.problem(fields["after"], f"{path}[{i}].after",
                      "must be longer than 0m (leave it out for a trigger that names no time)")
        afters.append(after or None)
    items = r.items(node, path, extra=("after",))
    return tuple(Trigger(item.key, item.label, item.help, after)
                 for item, after in zip(items, afters, strict=False))


def _availability(r: _Reader, node: yaml.Node, path: str) -> tuple[Availability, ...]:
    result = []
    for i, child in enumerate(r.seq(node, path)):
        here = f"{path}[{i}]"
        f = r.mapping(child, here, ("severities", "when"))
        if f is None or "severities" not in f or "when" not in f:
            continue
        when = r.text(f["when"], f"{here}.when")
        if when not in ("always", "business_hours"):
            r.problem(f["when"], f"{here}.when", f'"{when}" must be always or business_hours')
        result.append(Availability(r.texts(f["severities"], f"{here}.severities"), when))
    return tuple(result)


def _named(r: _Reader, node: yaml.Node, path: str) -> tuple[NamedContact, ...]:
    result = []
    for i, child in enumerate(r.seq(node, path)):
        f = r.mapping(child, f"{path}[{i}]", ("name", "contact"))
        if f and "name" in f and "contact" in f:
            result.append(NamedContact(r.text(f["name"], f"{path}[{i}].name"),
                                       r.text(f["contact"], f"{path}[{i}].contact")))
    return tuple(result)


TOP_REQUIRED = ("name", "severities", "tiers", "response_matrix", "escalation", "checklists",
                "communication", "review", "follow_up_kinds", "contacts", "business_hours",
                "notifications")
TOP_OPTIONAL = ("version", "owner", "next_review", "warn_at", "close_on_resolve", "tools",
                "intake", "reporting")
LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")  # a Prometheus label or annotation name


def _intake(r: _Reader, node: yaml.Node, severities: Mapping[str, Severity]) -> Intake | None:
    """The `intake` section: which labels and annotations make an incident of an alert."""
    f = r.mapping(node, "intake", ("severity",),
                  ("service", "title", "description", "dedup_labels"))
    if f is None:
        return None

    def label(value: yaml.Node, path: str) -> str:
        name = r.text(value, path)
        if name and not LABEL_RE.match(name):
            r.problem(value, path, f'"{visible(name[:MAX_KEY])}" is not a label name '
                      "(letters, digits and _, not starting with a digit)")
        return name

    def labels(path: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if path not in f:
            return default
        here = f"intake.{path}"
        names = tuple(label(n, f"{here}[{i}]") for i, n in enumerate(r.seq(f[path], here)))
        if not names:
            r.problem(f[path], here, "must name at least one")
        return names

    def severity(value: yaml.Node, path: str) -> str:
        sev = r.text(value, path)
        if sev and severities and sev not in severities:
            r.problem(value, path, f'severity "{visible(sev[:MAX_KEY])}" is not defined in '
                      "severities")
        return sev

    sev_label, mapped, default = "severity", {}, ""
    if "severity" in f:
        s = r.mapping(f["severity"], "intake.severity", ("label", "values", "default")) or {}
        if "label" in s:
            sev_label = label(s["label"], "intake.severity.label")
        if "values" in s:
            given = r.mapping(s["values"], "intake.severity.values", any_keys=True,
                              one_case=True) or {}
            mapped = {value.lower(): severity(n, f"intake.severity.values.{value}")
                      for value, n in given.items()}
        if "default" in s:
            default = severity(s["default"], "intake.severity.default")
    return Intake(
        severity_label=sev_label, severities=MappingProxyType(mapped), default_severity=default,
        service_label=label(f["service"], "intake.service") if "service" in f else "service",
        title=labels("title", ("summary",)), description=labels("description", ("description",)),
        dedup_labels=labels("dedup_labels", ("alertname",)))


# What a stored policy's aliases may expand to: a policy kept before aliases were
# refused still opens its incidents (the shipped policy is about 3,000 nodes).
MAX_STORED_NODES = 50_000


def parse_policy(source: str, filename: str = "policy.yaml", *, stored: bool = False
                 ) -> Policy:
    """Validate policy text; raise PolicyError listing every problem. A `stored` text
    (accepted before aliases were refused) may hold aliases that expand to at most
    MAX_STORED_NODES nodes."""
    r = _Reader(filename, stored)
    if len(source) > MAX_POLICY_BYTES or len(source.encode("utf-8", "surrogatepass")) \
            > MAX_POLICY_BYTES:
        raise PolicyError([f"{filename}: too large (a policy is at most "
                           f"{MAX_POLICY_BYTES // 1024} KiB)"])
    try:
        root = yaml.compose(source, Loader=_NoTagsLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = getattr(exc, "position", None)  # a ReaderError (a control character)
        line = mark.line + 1 if mark else \
            source[:position].count("\n") + 1 if isinstance(position, int) else 1
        problem = " ".join((getattr(exc, "problem", None) or str(exc).splitlines()[0]).split())
        raise PolicyError([f"{filename}:{line}: invalid YAML: {problem}"]) from None
    if root is None:
        raise PolicyError([f"{filename}:1: the policy is empty"])
    if _reached_twice(root) and not (stored and _expands_to(root, MAX_STORED_NODES)):
        raise PolicyError([_alias_problem(source, filename, stored)])
    top = r.mapping(root, "", TOP_REQUIRED, TOP_OPTIONAL)
    if top is None:
        raise PolicyError(r.told())
    policy = _build(r, top, source)
    if r.problems:
        raise PolicyError(r.told())
    assert policy is not None
    return policy


def _reached_twice(root: yaml.Node) -> bool:
    """Whether some node is reached twice (an alias): one visit per node, so an alias
    bomb or a cycle is found before anything walks its expansion."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        todo += _children(node)
    return False


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _expands_to(root: yaml.Node, limit: int) -> bool:
    """Whether the tree, every alias expanded, has at most `limit` nodes and no cycle;
    each node is counted once, so this is as quick as the text is long."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # the nodes whose children are being counted
    todo: list[tuple[yaml.Node, bool]] = [(root, False)]
    while todo:
        node, children_done = todo.pop()
        if children_done:
            open_.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[id(node)] > limit:
                return False
        elif id(node) in open_:
            return False  # an alias inside its own anchor
        elif id(node) not in sizes:
            open_.add(id(node))
            todo.append((node, True))
            todo += ((c, False) for c in _children(node))
    return True


def _alias_problem(source: str, filename: str, stored: bool = False) -> str:
    """`FILE:LINE: …` naming the first alias in `source`."""
    line, name = 1, ""
    try:
        for token in yaml.scan(source, Loader=_NoTagsLoader):
            if isinstance(token, yaml.AliasToken):
                line, name = token.start_mark.line + 1, f" (*{visible(token.value[:MAX_KEY])})"
                break
    except yaml.YAMLError:  # composed already, so not expected: the line stays 1
        pass
    if stored:
        return (f"{filename}:{line}: its YAML aliases{name} expand to more than "
                f"{MAX_STORED_NODES} values")
    return (f"{filename}:{line}: YAML anchors and aliases are not allowed{name}; "
            "write each value out")


def _build(r: _Reader, top: dict[str, yaml.Node], source: str) -> Policy | None:
    def section(name: str, build: Callable[[yaml.Node], Any], default: Any) -> Any:
        return build(top[name]) if name in top else default

    severities = {k: v for k, v in section(
        "severities", lambda n: r.keyed(n, "severities", lambda c, p, key: _severity(r, c, p, key)),
        {}).items() if v is not None}
    tiers = {k: v for k, v in section(
        "tiers", lambda n: r.keyed(n, "tiers", lambda c, p, key: _tier(r, c, p, key)),
        {}).items() if v is not None}
    if "severities" in top and not severities:
        r.problem(top["severities"], "severities", "must define at least one severity")
    if "tiers" in top and not tiers:
        r.problem(top["tiers"], "tiers", "must define at least one level")

    def check_level(node: yaml.Node, path: str, level: str) -> None:
        if tiers and level not in tiers:
            r.problem(node, path, f'level "{level}" is not defined in tiers')

    def check_severity(node: yaml.Node, path: str, sev: str) -> None:
        if severities and sev not in severities:
            r.problem(node, path, f'severity "{sev}" is not defined in severities')

    if "severities" in top and isinstance(top["severities"], yaml.MappingNode):
        for key_node, value in top["severities"].value:
            # Keys that are not plain text were reported already (and are unhashable here).
            sev = severities.get(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            if sev and sev.escalate_to and isinstance(value, yaml.MappingNode):
                esc = {k.value: v for k, v in value.value
                       if isinstance(k, yaml.ScalarNode)}.get("escalation")
                to = {k.value: v for k, v in esc.value if isinstance(k, yaml.ScalarNode)
                      }.get("to") if isinstance(esc, yaml.MappingNode) else None
                check_level(to or value, f"severities.{sev.key}.escalation.to", sev.escalate_to)

    matrix: dict[str, dict[str, timedelta]] = {}
    if "response_matrix" in top:
        rows = r.mapping(top["response_matrix"], "response_matrix", any_keys=True) or {}
        for sev, row in rows.items():
            check_severity(row, f"response_matrix.{sev}", sev)
            cells = r.mapping(row, f"response_matrix.{sev}", any_keys=True) or {}
            matrix[sev] = {}
            for level, cell in cells.items():
                check_level(cell, f"response_matrix.{sev}.{level}", level)
                d = r.duration(cell, f"response_matrix.{sev}.{level}")
                if d is not None:
                    matrix[sev][level] = d
            for level in tiers:
                if level not in cells:
                    r.problem(row, f"response_matrix.{sev}.{level}", "missing (a hole in the matrix)")
        for sev in severities:
            if sev not in rows:
                r.problem(top["response_matrix"], f"response_matrix.{sev}",
                          "missing (a hole in the matrix)")

    escalation: dict[str, EscalationTarget] = {}
    if "escalation" in top:
        for level, node in (r.mapping(top["escalation"], "escalation", any_keys=True) or {}).items():
            path = f"escalation.{level}"
            check_level(node, path, level)
            f = r.mapping(node, path, ("triggers", "handoff"), ("process",))
            if f is None:
                continue
            triggers = _triggers(r, f["triggers"], f"{path}.triggers") if "triggers" in f \
                else ()
            for item in triggers:
                if item.key == "other":
                    r.problem(f["triggers"], f"{path}.triggers", '"other" is built in; do not list it')
            escalation[level] = EscalationTarget(
                level, r.texts(f["process"], f"{path}.process") if "process" in f else (),
                triggers,
                r.items(f["handoff"], f"{path}.handoff", with_help=True) if "handoff" in f else (),
            )
        for level in list(tiers)[1:]:
            if level not in escalation:
                r.problem(top["escalation"], f"escalation.{level}",
                          "missing (every level above the first needs triggers and handoff)")

    checklists: dict[str, tuple[Item, ...]] = {}
    if "checklists" in top:
        f = r.mapping(top["checklists"], "checklists", ("triage", "resolution"),
                      ("knowledge_sharing",)) or {}
        checklists = {k: r.items(v, f"checklists.{k}") for k, v in f.items()}

    internal: dict[str, tuple[Item, ...]] = {}
    external: dict[str, tuple[Item, ...]] = {}
    if "communication" in top:
        f = r.mapping(top["communication"], "communication", ("internal", "external")) or {}
        if "internal" in f:
            for level, node in (r.mapping(f["internal"], "communication.internal",
                                          any_keys=True) or {}).items():
                check_level(node, f"communication.internal.{level}", level)
                internal[level] = r.items(node, f"communication.internal.{level}")
        if "external" in f:
            ext = r.mapping(f["external"], "communication.external",
                            ("customer", "vendor", "public")) or {}
            external = {k: r.items(v, f"communication.external.{k}") for k, v in ext.items()}

    required_for: tuple[str, ...] = ()
    review_fields: tuple[Item, ...] = ()
    if "review" in top:
        f = r.mapping(top["review"], "review", ("required_for", "fields")) or {}
        if "required_for" in f:
            required_for = r.texts(f["required_for"], "review.required_for")
            for sev in required_for:
                check_severity(f["required_for"], "review.required_for", sev)
        if "fields" in f:
            review_fields = r.items(f["fields"], "review.fields", with_help=True)
    for sev in severities.values():
        if sev.review_required != (sev.key in required_for) and "review" in top:
            r.problem(top["review"], "review.required_for",
                      f"disagrees with severities.{sev.key}.review_required")

    follow_ups = r.items(top["follow_up_kinds"], "follow_up_kinds") \
        if "follow_up_kinds" in top else ()

    level_contacts: dict[str, LevelContact] = {}
    management: list[ManagementContact] = []
    vendors: tuple[NamedContact, ...] = ()
    services: tuple[NamedContact, ...] = ()
    if "contacts" in top:
        f = r.mapping(top["contacts"], "contacts", ("levels", "management"),
                      ("vendors", "professional_services")) or {}
        if "levels" in f:
            given = r.mapping(f["levels"], "contacts.levels", any_keys=True) or {}
            for level, node in given.items():
                path = f"contacts.levels.{level}"
                check_level(node, path, level)
                c = r.mapping(node, path, ("primary", "phone", "chat", "escalation"))
                if c is not None and len(c) == 4:
                    level_contacts[level] = LevelContact(
                        *(r.text(c[k], f"{path}.{k}")
                          for k in ("primary", "phone", "chat", "escalation")))
            for level in tiers:
                if level not in given:
                    r.problem(f["levels"], f"contacts.levels.{level}", "missing")
        if "management" in f:
            for i, node in enumerate(r.seq(f["management"], "contacts.management")):
                path = f"contacts.management[{i}]"
                c = r.mapping(node, path, ("name", "email", "phone", "availability"))
                if c is None or len(c) < 4:
                    continue
                avail = _availability(r, c["availability"], f"{path}.availability")
                for j, a in enumerate(avail):
                    for sev in a.severities:
                        check_severity(c["availability"], f"{path}.availability[{j}].severities",
                                       sev)
                management.append(ManagementContact(
                    r.text(c["name"], f"{path}.name"), r.text(c["email"], f"{path}.email"),
                    r.text(c["phone"], f"{path}.phone"), avail))
        if "vendors" in f:
            vendors = _named(r, f["vendors"], "contacts.vendors")
        if "professional_services" in f:
            services = _named(r, f["professional_services"], "contacts.professional_services")

    hours = BusinessHours("UTC", (0, 1, 2, 3, 4), time(9), time(17))
    if "business_hours" in top:
        f = r.mapping(top["business_hours"], "business_hours",
                      ("timezone", "days", "start", "end")) or {}
        tz = r.text(f["timezone"], "business_hours.timezone") if "timezone" in f else "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            r.problem(f["timezone"], "business_hours.timezone", f'"{tz}" is not a time zone')
            tz = "UTC"
        days = []
        for i, day in enumerate(r.texts(f["days"], "business_hours.days") if "days" in f else ()):
            if day.lower()[:3] not in DAYS:
                r.problem(f["days"], f"business_hours.days[{i}]", f'"{day}" is not a day (mon..sun)')
            else:
                days.append(DAYS.index(day.lower()[:3]))
        bounds = []
        for key in ("start", "end"):
            value = r.text(f[key], f"business_hours.{key}") if key in f else ""
            m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
            if key in f and not m:
                r.problem(f[key], f"business_hours.{key}", f'"{value}" is not a time (write 17:30)')
            bounds.append(time(int(m.group(1)), int(m.group(2))) if m else time(0))
        if "start" in f and "end" in f and bounds[0] >= bounds[1] and len(r.problems) == 0:
            r.problem(f["end"], "business_hours.end", "must be later than start")
        hours = BusinessHours(tz, tuple(days), bounds[0], bounds[1])

    tools: dict[str, Mapping[str, str]] = {}
    if "tools" in top:
        for name, node in (r.mapping(top["tools"], "tools", any_keys=True) or {}).items():
            entries = r.mapping(node, f"tools.{name}", any_keys=True) or {}
            tools[name] = MappingProxyType(
                {k: r.text(v, f"tools.{name}.{k}") for k, v in entries.items()})

    notifications = Notifications(True, (), timedelta(seconds=10))
    if "notifications" in top:
        required = ("bell",) if r.stored else ("bell", "announce", "repage_every", "repage_limit")
        f = r.mapping(top["notifications"], "notifications", required,
                      ("command", "timeout", "announce", "repage_every", "repage_limit")) or {}
        command: tuple[str, ...] = ()
        if "command" in f:
            if isinstance(f["command"], yaml.ScalarNode) and f["command"].value in _NULLS:
                command = ()
            elif isinstance(f["command"], yaml.ScalarNode):
                r.problem(f["command"], "notifications.command",
                          "must be a list of arguments, never a shell string")
            else:
                command = r.texts(f["command"], "notifications.command")
        timeout = r.duration(f["timeout"], "notifications.timeout") if "timeout" in f else None
        defaults = Notifications(True, (), timedelta(seconds=10))
        announce = defaults.announce
        if "announce" in f:
            announce = r.texts(f["announce"], "notifications.announce")
            for sev in announce:
                check_severity(f["announce"], "notifications.announce", sev)
        every = r.duration(f["repage_every"], "notifications.repage_every") \
            if "repage_every" in f else None
        if every is not None and every <= timedelta(0):
            r.problem(f["repage_every"], "notifications.repage_every",
                      "must be longer than 0m")
        limit = r.count(f["repage_limit"], "notifications.repage_limit") \
            if "repage_limit" in f else defaults.repage_limit
        notifications = Notifications(
            r.boolean(f["bell"], "notifications.bell") if "bell" in f else True,
            command, timeout or timedelta(seconds=10), announce,
            every or defaults.repage_every, limit)

    def opt_text(name: str, default: str) -> str:
        return r.text(top[name], name) if name in top else default

    shifts = _reporting_shifts(r, top["reporting"]) if "reporting" in top else (time(0),)

    next_review = opt_text("next_review", "").strip()
    if next_review:
        try:
            date.fromisoformat(next_review)
            if not re.fullmatch(r"\d{4}-\d\d-\d\d", next_review):
                raise ValueError
        except ValueError:
            r.problem(top["next_review"], "next_review",
                      f'"{visible(next_review[:40])}" is not a date (write 2026-05-22)')
            next_review = ""

    return Policy(
        name=opt_text("name", "policy"),
        version=opt_text("version", ""),
        owner=opt_text("owner", ""),
        warn_at=r.ratio(top["warn_at"], "warn_at") if "warn_at" in top else 0.25,
        close_on_resolve=r.boolean(top["close_on_resolve"], "close_on_resolve")
        if "close_on_resolve" in top else True,
        severities=MappingProxyType(severities),
        tiers=MappingProxyType(tiers),
        response_matrix=MappingProxyType({k: MappingProxyType(v) for k, v in matrix.items()}),
        escalation=MappingProxyType(escalation),
        checklists=MappingProxyType(checklists),
        internal_communication=MappingProxyType(internal),
        external_communication=MappingProxyType(external),
        review_required_for=required_for,
        review_fields=review_fields,
        follow_up_kinds=follow_ups,
        level_contacts=MappingProxyType(level_contacts),
        management=tuple(management),
        vendors=vendors,
        professional_services=services,
        business_hours=hours,
        tools=MappingProxyType(tools),
        notifications=notifications,
        source=source,
        digest=hashlib.sha256(source.encode()).hexdigest(),
        next_review=next_review,
        intake=_intake(r, top["intake"], severities) if "intake" in top else None,
        shifts=shifts,
    )


def _reporting_shifts(r: _Reader, node: yaml.Node) -> tuple[time, ...]:
    """`reporting.shifts`: the local times (in the business-hours zone) at which a shift
    begins, e.g. ["08:00", "20:00"]; `sladeck digest` starts at the latest one."""
    f = r.mapping(node, "reporting", (), ("shifts",)) or {}
    if "shifts" not in f:
        return (time(0),)
    found: list[time] = []
    items = r.seq(f["shifts"], "reporting.shifts")
    for i, item in enumerate(items):
        value = r.text(item, f"reporting.shifts[{i}]")
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if not m:
            r.problem(item, f"reporting.shifts[{i}]",
                      f'"{visible(value[:40])}" is not a time (write 08:00)')
            continue
        at = time(int(m.group(1)), int(m.group(2)))
        if at in found:
            r.problem(item, f"reporting.shifts[{i}]", f'"{value}" is listed twice')
        else:
            found.append(at)
    if not items and isinstance(f["shifts"], yaml.SequenceNode):
        r.problem(f["shifts"], "reporting.shifts", "must list at least one time (write "
                  '["08:00", "20:00"])')
    return tuple(sorted(found)) or (time(0),)


def _node_at(node: yaml.Node | None, *keys: str) -> yaml.Node | None:
    """The node at `keys` below `node` (mappings only), or None."""
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value
                     if isinstance(k, yaml.ScalarNode) and k.value == key), None)
    return node


def _said(d: timedelta | None) -> str:
    return format_duration(d) if d is not None else "none"


def disagreements(policy: Policy, filename: str) -> list[str]:
    """What `policy check` refuses in a policy that loads: keys that repeat another and
    disagree with it (`FILE:LINE: key.path: …`). Not a load error, so a policy edited in
    one place (the matrix) still opens its incidents while `policy check` says what to
    fix."""
    r = _Reader(filename)
    root = yaml.compose(policy.source, Loader=_NoTagsLoader)
    top = r.mapping(root, "", any_keys=True) or {}
    _cross_check(r, top, policy)
    return r.problems


# A duration named in a trigger's words: "within 30 minutes", "after 2h", "for 1 day".
_NAMED_TIME = re.compile(r"\b(\d+)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)\b",
                         re.IGNORECASE)
_UNIT = {"s": "s", "m": "m", "h": "h", "d": "d"}


def untimed_triggers(policy: Policy, filename: str) -> list[str]:
    """Warnings for `policy check`: escalation triggers whose words name a time ("Issue
    not resolved within 30 minutes") but that carry no `after`, so they can be chosen
    the moment an incident opens; each `FILE:LINE: key.path: …` with the `after` to add."""
    r = _Reader(filename)
    root = yaml.compose(policy.source, Loader=_NoTagsLoader)
    top = r.mapping(root, "", any_keys=True) or {}
    for level, target in policy.escalation.items():
        listed = _node_at(top.get("escalation"), level, "triggers")
        for n, trigger in enumerate(target.triggers):
            named = _NAMED_TIME.search(f"{trigger.label} {trigger.help or ''}")
            if trigger.after is not None or named is None:
                continue
            node = listed.value[n] if isinstance(listed, yaml.SequenceNode) \
                and n < len(listed.value) else listed
            unit = _UNIT[named.group(2)[0].lower()]
            r.problem(node, f"escalation.{level}.triggers[{n}]",
                      f'"{visible(trigger.label)}" names a time but has no `after`, so it can '
                      f"be chosen at once; add `after: {named.group(1)}{unit}` to make it wait")
    return r.problems


def _cross_check(r: _Reader, top: dict[str, yaml.Node], policy: Policy) -> None:
    """Keys that repeat another must agree with it: a severity's `response` is the
    response matrix's first-level column, a tier's `resolution` its `escalate_after`
    (the matrix and `escalate_after` are what the clocks run on)."""
    first = policy.levels[0] if policy.levels else None
    for sev in policy.severities.values():
        cell = policy.response_matrix.get(sev.key, {}).get(first) if first else None
        if cell is not None and sev.response != cell:
            node = _node_at(top.get("severities"), sev.key, "response")
            r.problem(node, f"severities.{sev.key}.response",
                      f"{format_duration(sev.response)} disagrees with "
                      f"response_matrix.{sev.key}.{first} ({format_duration(cell)}), which "
                      "the clocks use")
    for tier in policy.tiers.values():
        node = _node_at(top.get("tiers"), tier.key, "resolution")
        if node is not None and tier.resolution != tier.escalate_after:
            r.problem(node, f"tiers.{tier.key}.resolution",
                      f"{_said(tier.resolution)} disagrees with tiers.{tier.key}.escalate_after "
                      f"({_said(tier.escalate_after)}), which the clocks use")
