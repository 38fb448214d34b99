"""Node parameters, each declared once: name, type, default, range or choices, unit, live or not.

A table of `Param`s is the one source for everything else about a parameter:
the rclpy descriptors and the on-set checks (mbrl_ros.nodes.common), the
defaults and validation of the library config it fills (e.g.
mbrl_ros.runtime.control.ControlConfig), the check of the YAML parameter files
(`check_ros_parameters`) and the tables in docs/nodes.md and README.md
(`markdown_table`, `replace_between_markers`; written by `mbrl-ros params --write`).

Types are ROS parameter types: bool, integer, double, string, string_array, double_array.
A range is inclusive at both ends, as rcl_interfaces' FloatingPointRange/IntegerRange.
Standard library only, like mbrl_ros.spec: every layer may use it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

# Python type of each ROS parameter type; string_array / double_array values are lists of str / float.
TYPES: dict[str, type] = {"bool": bool, "integer": int, "double": float, "string": str, "string_array": list,
                          "double_array": list}
ARRAY_TYPES = ("string_array", "double_array")

# rclpy declares use_sim_time on every node itself; parameter files may set it anywhere.
IMPLICIT: dict[str, str] = {"use_sim_time": "bool"}


@dataclass(frozen=True)
class Param:
    """One parameter. `live`: takes effect when set on a running node; otherwise read-only."""

    name: str
    type: str  # a key of TYPES
    default: Any
    description: str
    range: Optional[tuple[float, float]] = None  # (min, max), inclusive; integer and double only
    unit: str = ""
    choices: tuple[str, ...] = ()  # string only
    live: bool = False

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"parameter {self.name}: type must be one of {sorted(TYPES)}, got {self.type!r}")
        if self.range is not None:
            if self.type not in ("integer", "double"):
                raise ValueError(f"parameter {self.name}: a range needs an integer or double type")
            low, high = self.range
            if not low <= high:
                raise ValueError(f"parameter {self.name}: range {self.range} is empty")
        if self.choices and self.type != "string":
            raise ValueError(f"parameter {self.name}: choices need a string type")
        self.check(self.default)  # a default outside its own range is a bug in the table

    def check(self, value: Any, strict: bool = True) -> Any:
        """`value` if it is of this type, inside the range and one of the choices; else ValueError
        with a one-line reason. strict=False also takes an int for a double (Python callers; ROS
        itself refuses 20 for a double parameter, so files and services are checked strictly)."""
        expected = TYPES[self.type]
        if self.type == "double" and not strict and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(f"{self.name} must be {_article(self.type)} {self.type}, got {value!r} "
                             f"({_type_name(value)})")
        if self.type == "string_array" and not all(isinstance(item, str) for item in value):
            raise ValueError(f"{self.name} must be a list of strings, got {value!r}")
        if self.type == "double_array":
            value = self._check_doubles(value, strict)
        if self.type == "double" and (math.isnan(value) or (math.isinf(value) and self.range is None)):
            raise ValueError(f"{self.name} must be a finite number, got {value!r}")  # inf only if its range says
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            raise ValueError(f"{self.name} must be in [{_number(self.range[0])}, {_number(self.range[1])}]"
                             f"{' ' + self.unit if self.unit else ''}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {' | '.join(self.choices)}, got {value!r}")
        return value

    def _check_doubles(self, value: list, strict: bool) -> list:
        """A list of finite floats (ints too when not strict: ROS itself refuses [-1, 1] for a double
        array, so write -1.0 in parameter files)."""
        items = []
        for item in value:
            if not strict and isinstance(item, int) and not isinstance(item, bool):
                item = float(item)
            if not isinstance(item, float):
                raise ValueError(f"{self.name} must be a list of floating-point numbers (write 1.0, not 1), "
                                 f"got {value!r}")
            if not math.isfinite(item):
                raise ValueError(f"{self.name} must hold finite numbers, got {value!r}")
            items.append(item)
        return items

    def summary(self) -> str:
        """The description with unit, range/choices and liveness: what `ros2 param describe` shows."""
        parts = [self.description]
        if self.unit:
            parts.append(f"unit: {self.unit}")
        if self.choices:
            parts.append("one of: " + " | ".join(self.choices))
        parts.append("live: settable at run time" if self.live else "read-only: set at start-up")
        return "; ".join(parts)


def table(*entries: Param | Mapping[str, Param]) -> dict[str, Param]:
    """{name: Param} from Params and other tables, in order; a name given twice is an error."""
    out: dict[str, Param] = {}
    for entry in entries:
        for param in entry.values() if isinstance(entry, Mapping) else [entry]:
            if param.name in out:
                raise ValueError(f"parameter {param.name} declared twice")
            out[param.name] = param
    return out


def defaults(params: Mapping[str, Param]) -> dict[str, Any]:
    return {name: param.default for name, param in params.items()}


def check_values(params: Mapping[str, Param], values: Mapping[str, Any], strict: bool = True) -> None:
    """ValueError (one line, the first problem) unless every value is a known, valid parameter."""
    for name, value in values.items():
        if name not in params:
            raise ValueError(f"unknown parameter {name}; known: {', '.join(sorted(params))}")
        params[name].check(value, strict)


def check_ros_parameters(nodes: Mapping[str, Mapping[str, Param]], document: Mapping[str, Any],
                         source: str = "parameters") -> list[str]:
    """Problems (one line each) in a ROS 2 parameter file's content (`node: ros__parameters: {...}`,
    already parsed): a section for a node not in `nodes`, a key that is not a declared parameter of
    that node, a value of the wrong type or outside its range/choices. [] when all is well."""
    problems = []
    if not isinstance(document, Mapping):
        return [f"{source}: not a mapping of node names to sections"]
    for node, section in document.items():
        if node not in nodes:
            problems.append(f"{source}: unknown node '{node}' (known: {', '.join(sorted(nodes))})")
            continue
        values = section.get("ros__parameters") if isinstance(section, Mapping) else None
        if not isinstance(values, Mapping):
            problems.append(f"{source}: {node}: no 'ros__parameters:' mapping")
            continue
        params = nodes[node]
        for name, value in values.items():
            if name in IMPLICIT and name not in params:
                param = Param(name, IMPLICIT[name], False, "declared by rclpy")
            elif name not in params:
                problems.append(f"{source}: {node}: '{name}' is not a parameter of {node} "
                                f"(known: {', '.join(sorted(params))})")
                continue
            else:
                param = params[name]
            try:
                param.check(value)
            except ValueError as exc:
                problems.append(f"{source}: {node}: {exc}")
    return problems


# ------------------------------------------------------------------------------------- docs
COLUMNS = ("parameter", "type", "default", "range / choices", "unit", "live", "description")


def markdown_table(params: Iterable[Param], columns: tuple[str, ...] = COLUMNS) -> str:
    """A Markdown table of the parameters (columns: any of COLUMNS, in the order given)."""
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for param in params:
        cells = {"parameter": f"`{param.name}`", "type": param.type, "default": _code(_literal(param.default)),
                 "range / choices": _limits(param), "unit": param.unit, "live": "yes" if param.live else "no",
                 "description": param.description}
        rows.append("| " + " | ".join(_cell(cells[column]) for column in columns) + " |")
    return "\n".join(rows)


def markers(key: str) -> tuple[str, str]:
    return f"<!-- params:{key} -->", f"<!-- /params:{key} -->"


def replace_between_markers(text: str, key: str, content: str) -> str:
    """`text` with what lies between the `key` markers replaced by `content` (own lines).
    ValueError when the markers are missing or out of order."""
    start, end = markers(key)
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"markers {start} ... {end} not found")
    return pattern.sub(lambda _: f"{start}\n{content}\n{end}", text, count=1)


def marker_keys(text: str) -> list[str]:
    """The keys of the `<!-- params:KEY -->` blocks in `text`, in order."""
    return re.findall(r"<!-- params:([\w.-]+) -->", text)


def _limits(param: Param) -> str:
    if param.choices:
        return " | ".join(f"`{choice}`" for choice in param.choices)
    if param.range is not None:
        return f"[{_number(param.range[0])}, {_number(param.range[1])}]"
    return ""


def _literal(value: Any) -> str:
    """A value as a parameter file / `-p name:=value` writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return _number(value)


def _number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    return str(value)


def _code(text: str) -> str:
    return f"`{text}`"


def _cell(text: str) -> str:
    """A table cell: pipes escaped, code spans included (GitHub splits the row on them first)."""
    return re.sub(r"(?<!\\)\|", r"\\|", text)


def _article(type_name: str) -> str:
    return "an" if type_name[0] in "aeiou" else "a"


def _type_name(value: Any) -> str:
    for name, expected in TYPES.items():
        if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
            return name
    return type(value).__name__
