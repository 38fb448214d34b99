"""`mbrl-ros params [--write | --check]`: the nodes' parameter tables in the docs and the parameter files.

Each node declares its parameters once (a `PARAMETERS` table of mbrl_ros.params.Param in its
module, mbrl_ros.bringup.graph.node_module). From those tables this command

- renders the Markdown tables between `<!-- params:KEY -->` and `<!-- /params:KEY -->` in
  docs/nodes.md and README.md. KEY is a node name (all its parameters, every column) or
  `<node>.live` (only the parameters settable at run time, fewer columns);
- checks config/ros/*.yaml: every key under a node's `ros__parameters` is a declared parameter of
  that node, of its type and inside its range/choices.

--write rewrites stale tables; --check (and the default) exits 1 naming what is stale or wrong.
Needs rclpy (the node modules import it) and a source checkout (the docs are not installed).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Mapping

from mbrl_ros.bringup.graph import NODE_NAMES, node_module
from mbrl_ros.params import (Param, check_ros_parameters, marker_keys, markdown_table, replace_between_markers)
from mbrl_ros.paths import config_dir, share_dir

DOC_FILES = ("docs/nodes.md", "README.md")
LIVE_COLUMNS = ("parameter", "default", "range / choices", "unit", "description")


def node_parameters() -> dict[str, dict[str, Param]]:
    """{node name: its parameter table}, imported from the node modules."""
    return {name: importlib.import_module(node_module(name)).PARAMETERS for name in NODE_NAMES}


def render(key: str, nodes: Mapping[str, Mapping[str, Param]]) -> str:
    """The Markdown for one marker key: `node` or `node.live`."""
    name, _, view = key.partition(".")
    if name not in nodes or view not in ("", "live"):
        raise ValueError(f"unknown parameter table '{key}': use one of {', '.join(nodes)} (optionally + '.live')")
    params = nodes[name].values()
    if view == "live":
        return markdown_table([p for p in params if p.live], LIVE_COLUMNS)
    return markdown_table(params)


def updated(text: str, nodes: Mapping[str, Mapping[str, Param]]) -> str:
    """`text` with every parameter table it marks rendered afresh."""
    for key in marker_keys(text):
        text = replace_between_markers(text, key, render(key, nodes))
    return text


def stale_docs(root: Path, nodes: Mapping[str, Mapping[str, Param]], write: bool = False) -> list[str]:
    """The doc files under `root` whose tables differ from the declarations (rewritten if `write`)."""
    stale = []
    for relative in DOC_FILES:
        path = root / relative
        text = path.read_text()
        fresh = updated(text, nodes)
        if fresh != text:
            stale.append(relative)
            if write:
                path.write_text(fresh)
    return stale


def params_file_problems(path: Path, nodes: Mapping[str, Mapping[str, Param]] | None = None) -> list[str]:
    """Problems (one line each) in a ROS 2 parameter file against the node tables; [] when fine."""
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        return [f"{path.name}: not YAML: {exc}".splitlines()[0]]
    return check_ros_parameters(nodes if nodes is not None else node_parameters(), document or {}, path.name)


def ros_parameter_files(folder: Path | None = None) -> list[Path]:
    """The ROS 2 parameter files in config/ros (those with a `<node>: ros__parameters:` section;
    config/ros also holds an IngestConfig example)."""
    import yaml

    files = []
    for path in sorted((folder or config_dir() / "ros").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if isinstance(document, dict) and any(isinstance(v, dict) and "ros__parameters" in v
                                              for v in document.values()):
            files.append(path)
    return files


def register(parser) -> None:
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="rewrite stale tables in " + ", ".join(DOC_FILES))
    action.add_argument("--check", action="store_true", help="exit 1 when a table is stale or a parameter file "
                        "sets an unknown/bad parameter (the default)")
    parser.add_argument("--root", type=Path, default=None, help="source checkout holding the docs "
                        "(default: the package's own)")


def run(args) -> int:
    root = args.root or share_dir()
    nodes = node_parameters()
    stale = stale_docs(root, nodes, write=args.write)
    problems = [problem for path in ros_parameter_files() for problem in params_file_problems(path, nodes)]
    for problem in problems:
        print(f"mbrl-ros params: {problem}")
    if args.write:
        for relative in stale:
            print(f"mbrl-ros params: wrote {relative}")
        return 1 if problems else 0
    for relative in stale:
        print(f"mbrl-ros params: {relative} is out of date; run `mbrl-ros params --write`")
    return 1 if stale or problems else 0
