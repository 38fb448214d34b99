"""`mbrl-ros`: one CLI for every job. Subcommands live in their own modules.

Each subcommand module exposes `register(parser)` (add its arguments) and
`run(args) -> int`. Modules are imported only when their subcommand runs, so
`mbrl-ros launch` on a robot never imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("mbrl_ros.bringup.demo", "the main job: simulated robot controlled by the shipped model, learning as it runs"),
    "launch": ("mbrl_ros.bringup.launcher", "start a node graph (sim | robot) as separate processes, without `ros2 launch`"),
    "params": ("mbrl_ros.bringup.params_cli", "check the parameter files and the docs' parameter tables (--write: update the tables)"),
    "collect": ("mbrl_ros.data.collect_cli", "collect episodes from a simulated robot into rosbag2 (no ROS needed)"),
    "ingest": ("mbrl_ros.data.ingest_cli", "convert rosbag2 recordings into the episode cache"),
    "train": ("mbrl_ros.training.train_cli", "train the world model from rosbag2 recordings / an episode cache"),
    "relabel": ("mbrl_ros.training.relabel_cli", "give a trained model a (new) task: relabel the episodes, retrain only the reward/value heads"),
    "evaluate": ("mbrl_ros.training.evaluate_cli", "open-loop prediction errors and reward R^2 on held-out episodes"),
    "export": ("mbrl_ros.export.export_cli", "export a checkpoint to an ONNX model bundle (parity-checked)"),
    "agent": ("mbrl_ros.agent.agent_cli", "the model-based RL loop and the SAC/PPO baselines, no ROS needed"),
}


def _usage() -> str:
    width = max(len(n) for n in SUBCOMMANDS)
    lines = ["usage: mbrl-ros <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "`mbrl-ros <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"mbrl-ros: unknown command '{name}'\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, help_ = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"mbrl-ros {name}", description=help_,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    module.register(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
