"""The robot's command limits as controller node arguments (the controller requires them)."""
from __future__ import annotations


def limit_parameters(action_spec) -> dict:
    """command_joints / command_min / command_max for a robot whose limits are `action_spec`."""
    return {"command_joints": list(action_spec.names), "command_min": [float(x) for x in action_spec.low],
            "command_max": [float(x) for x in action_spec.high]}


def limit_args(action_spec) -> list[str]:
    """The same as `-p name:=value` arguments for a node process."""
    args = []
    for name, value in limit_parameters(action_spec).items():
        args += ["-p", f"{name}:=[{', '.join(repr(v) for v in value)}]"]
    return args
