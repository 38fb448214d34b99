"""Supervision like a launch system: required nodes stop the graph, the others come back.

The policy (mbrl_ros.bringup.supervision) is read by both entry points; the end-to-end test runs
`mbrl-ros launch sim` as real processes over real DDS and kills nodes with SIGKILL.
"""
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from mbrl_ros.bringup.graph import GRAPHS, NODE_NAMES, REQUIRED_NODES, RESPAWNED_NODES, sim_graph
from mbrl_ros.bringup.supervision import (RESPAWN, Backoff, RespawnPolicy, describe_exit, graph_exit_code,
                                          launch_node_options, node_parameter, start_settings)
from mbrl_ros.nodes.cpu_share import THREAD_ENV_VARS

GRAPH_VARIANTS = [{}, {"record": "true", "train": "true"}, {"record": "false"}]


def all_specs():
    for arguments, build in GRAPHS.values():
        for given in GRAPH_VARIANTS:
            yield from build({k: v for k, v in given.items() if k in arguments})


def test_every_node_is_either_required_or_respawned():
    assert REQUIRED_NODES | RESPAWNED_NODES == set(NODE_NAMES) and not REQUIRED_NODES & RESPAWNED_NODES
    assert {"controller", "sim"} == REQUIRED_NODES  # the robot never runs without its controller
    for spec in all_specs():
        assert spec.required == (spec.name in {"controller", "sim"}), spec.name
        assert spec.background == (spec.name in {"logger", "trainer"}), spec.name


def test_backoff_doubles_up_to_its_cap_and_resets_after_a_stable_run():
    policy = RespawnPolicy(initial_delay_s=0.5, factor=2.0, max_delay_s=3.0, stable_after_s=10.0)
    backoff = Backoff(policy)
    assert [backoff.next_delay(uptime_s=1.0) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.next_delay(uptime_s=10.0) == 0.5  # it had run long enough: a fresh count
    assert backoff.total == 6
    assert RESPAWN.delay(1) == RESPAWN.initial_delay_s and RESPAWN.delay(100) == RESPAWN.max_delay_s


def test_exit_codes_name_the_signal_and_are_never_zero():
    assert describe_exit(-9) == "code -9 (SIGKILL)" and describe_exit(3) == "code 3"
    assert graph_exit_code(-9) == 137 and graph_exit_code(2) == 2 and graph_exit_code(0) == 1


def test_the_launch_files_get_the_same_supervision_as_the_launcher():
    """What launch_description hands launch_ros for each node (respawn, delay, env, nice prefix)
    comes from the same NodeSpec flags and parameters `mbrl-ros launch` uses."""
    seen = set()
    for spec in all_specs():
        options = launch_node_options(spec)
        settings = start_settings(spec)
        seen.add(spec.name)
        if spec.required:
            assert "respawn" not in options, spec.name  # launch_description shuts down on its exit instead
        else:
            assert options["respawn"] is True and options["respawn_delay"] == RESPAWN.initial_delay_s
        if spec.background:
            threads = node_parameter(spec, "threads")
            assert options["additional_env"] == {name: str(threads) for name in THREAD_ENV_VARS}
            assert options["prefix"] == f"nice -n {node_parameter(spec, 'niceness')}" == settings.prefix
            assert node_parameter(spec, "niceness") > 0  # the shipped defaults put control first
        else:
            assert "additional_env" not in options and "prefix" not in options and settings.niceness == 0
    assert seen == set(NODE_NAMES)


def test_node_parameter_reads_override_then_file_then_table(tmp_path):
    import yaml

    from mbrl_ros.nodes.trainer_node import PARAMETERS

    trainer = next(n for n in sim_graph() if n.name == "trainer")
    in_file = yaml.safe_load(trainer.params_file.read_text())["trainer"]["ros__parameters"]
    assert node_parameter(trainer, "threads") == in_file["threads"]  # config/ros/sim.yaml
    assert "niceness" not in in_file and node_parameter(trainer, "niceness") == PARAMETERS["niceness"].default
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({"trainer": {"ros__parameters": {"niceness": 17, "threads": 3}}}))
    custom = next(n for n in sim_graph({"params_file": str(params)}) if n.name == "trainer")
    assert start_settings(custom).niceness == 17 and start_settings(custom).env["OMP_NUM_THREADS"] == "3"
    custom.parameters["niceness"] = 4  # a graph override wins over the file
    assert start_settings(custom).niceness == 4


def test_launch_description_wires_respawn_and_required_shutdown(monkeypatch):
    """launch_ros is not installable from PyPI: record what launch_description builds with minimal
    stand-ins for the launch API it calls, to check the wiring (every node gets its supervision
    options; each required node, and only those, an OnProcessExit -> Shutdown)."""
    made = []

    def action(kind):
        def build(*args, **kwargs):
            obj = types.SimpleNamespace(kind=kind, args=args, kwargs=kwargs)
            made.append(obj)
            return obj
        return build

    launch = types.ModuleType("launch")
    launch.LaunchDescription = action("LaunchDescription")
    actions = types.ModuleType("launch.actions")
    for name in ("DeclareLaunchArgument", "EmitEvent", "LogInfo", "OpaqueFunction", "RegisterEventHandler"):
        setattr(actions, name, action(name))
    handlers = types.ModuleType("launch.event_handlers")
    handlers.OnProcessExit = action("OnProcessExit")
    events = types.ModuleType("launch.events")
    events.Shutdown = action("Shutdown")
    subs = types.ModuleType("launch.substitutions")
    subs.LaunchConfiguration = lambda name: types.SimpleNamespace(perform=lambda ctx: ctx[name])
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = action("Node")
    ros_actions.LifecycleNode = action("LifecycleNode")
    for name, module in {"launch": launch, "launch.actions": actions, "launch.event_handlers": handlers,
                         "launch.events": events, "launch.substitutions": subs, "launch_ros": launch_ros,
                         "launch_ros.actions": ros_actions}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "mbrl_ros.bringup.launch_description", raising=False)
    from mbrl_ros.bringup.launch_description import generate

    description = generate("sim")
    opaque = description.args[0][-1]
    arguments = GRAPHS["sim"][0]
    context = {name: arg.default for name, arg in arguments.items()}
    built = opaque.kwargs["function"](context)
    nodes = {a.kwargs["name"]: a for a in built if a.kind in ("Node", "LifecycleNode")}
    assert set(nodes) == {"sim", "controller", "logger", "trainer"}
    for spec in sim_graph(context):
        for key, value in launch_node_options(spec).items():
            assert nodes[spec.name].kwargs[key] == value, (spec.name, key)
    shutdowns = [a for a in built if a.kind == "RegisterEventHandler"]
    targets = {h.args[0].kwargs["target_action"].kwargs["name"] for h in shutdowns}
    assert targets == {"sim", "controller"}
    for handler in shutdowns:
        kinds = [a.kind for a in handler.args[0].kwargs["on_exit"]]
        assert kinds == ["LogInfo", "EmitEvent"]
        assert handler.args[0].kwargs["on_exit"][1].kwargs["event"].kind == "Shutdown"
    monkeypatch.delitem(sys.modules, "mbrl_ros.bringup.launch_description", raising=False)


# ------------------------------------------------------------------- real processes
def _pids(log: Path, name: str) -> list[int]:
    """PIDs the launcher reported for node `name` (started, then each restart), in order."""
    text = log.read_text(errors="replace")
    return [int(m.group(2)) for m in re.finditer(r"\[launch\] (started|restarted) " + name + r" \(pid (\d+)", text)]


def _max_gap(commands: list[tuple[float, float]], start: float, end: float) -> float:
    """Longest gap between the send times of the commands that arrived between `start` and `end`."""
    sent = np.sort([sent for arrived, sent in commands if start <= arrived <= end])
    return float(np.diff(sent).max()) if len(sent) > 1 else float("inf")


@pytest.mark.ros
def test_logger_crash_is_respawned_and_control_never_stops_but_a_controller_crash_stops_the_graph(
        tmp_path, monkeypatch):
    """The graph and this test's node run on Fast DDS's UDPv4 transport only. With its default
    shared-memory transport a SIGKILLed subscriber can stall the processes that publish to it for
    1-1.7 s (the SHM port health check, healthy_check_timeout_ms 1000; seen in 2 of ~25 runs here,
    /clock and commands both stopped at the kill and again when the new logger opened its ports): a
    transport property, documented in docs/nodes.md "Supervision", not the supervision's doing, so
    kept out of this test."""
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Float64MultiArray

    from mbrl_ros.nodes.common import COMMAND_QOS
    from mbrl_ros.nodes.cpu_share import thread_nice_values
    from tests.ros_helpers import (ROOT, diagnostic_statuses, diagnostic_values, ros_node, spin_for, spin_until,
                                   stop)

    # The graph and this test's own node, which measures the command stream, both on UDPv4: with
    # its default SHM + UDP the measuring node saw 1.05 and 1.2 s gaps at the kill in 2 of 4 runs on
    # an idle machine while the robot's checks passed; 0 of 10 with UDPv4 (docs/nodes.md "Supervision").
    monkeypatch.setenv("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")
    data = tmp_path / "data"
    log = tmp_path / "launch.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mbrl_ros.cli", "launch", "sim", "train:=false",
                                 f"data_dir:={data}"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        with ros_node() as node:
            # Each command as (arrival here, monotonic; sent by the controller, its wall clock). Gaps are
            # taken between send times, what the robot's command stream did: arrival times would add
            # this test process's own scheduling delays on a busy 2-core machine.
            commands, diags = [], []
            node.create_subscription(
                Float64MultiArray, "/mbrl/commands",
                lambda msg, info: commands.append((time.monotonic(), info["source_timestamp"] * 1e-9)), COMMAND_QOS)
            node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
            tail = lambda: log.read_text(errors="replace")[-3000:]  # noqa: E731
            logger_recording = lambda: int(diagnostic_values(diags, "mbrl_ros: logger").get(  # noqa: E731
                "messages_mbrl_commands", "0")) > 0
            assert spin_until(node, lambda: len(commands) > 40 and logger_recording(), 120, [proc]), tail()

            # Background nodes run niced with capped pools, every thread of them (the launcher
            # starts them so, the node applies its parameters again).
            logger_pid = _pids(log, "logger")[0]
            assert set(thread_nice_values(logger_pid).values()) == {5}, thread_nice_values(logger_pid)
            environ = Path(f"/proc/{logger_pid}/environ").read_bytes().split(b"\0")
            assert b"OMP_NUM_THREADS=1" in environ and b"MKL_NUM_THREADS=1" in environ
            assert b"FASTDDS_BUILTIN_TRANSPORTS=UDPv4" in environ  # the graph inherits the transport
            controller_pid = _pids(log, "controller")[0]
            assert set(thread_nice_values(controller_pid).values()) == {0}  # control keeps full priority

            # A baseline: the longest command gap with nothing killed, over about as long as the
            # crash-and-restart window below (this machine may be busy with other work).
            spin_for(node, 8.0)
            kill_at = time.monotonic()
            baseline_gap = _max_gap(commands, kill_at - 8.0, kill_at)
            assert np.isfinite(baseline_gap), "no commands in the 8 s before the kill"
            os.kill(logger_pid, signal.SIGKILL)
            diags.clear()
            assert spin_until(node, lambda: len(_pids(log, "logger")) == 2, 30, [proc]), tail()
            new_logger = _pids(log, "logger")[1]
            assert new_logger != logger_pid
            assert spin_until(node, logger_recording, 60, [proc]), tail()  # the new logger records again
            spin_for(node, 1.0)
            recovered_at = time.monotonic()
            spin_for(node, 5.0)  # more baseline, after the restart
            gap = _max_gap(commands, kill_at, recovered_at)
            baseline_gap = max(baseline_gap, _max_gap(commands, recovered_at, time.monotonic()))
            # Control never stopped, judged where it matters, at the robot: its command watchdog
            # (config/ros/sim.yaml command_timeout_s, 0.5 s) never zeroed the actuators, the oldest
            # command it held stayed inside that timeout, and the controller's stream never lapsed as
            # long. A controller that lapses while the robot runs fails all three; a stall of the whole
            # graph (the 1-1.7 s of the SHM transport in the docstring stops /clock too, so the sim's
            # clock pauses with it) fails the gap check, measured on wall clock. Not a tighter bound:
            # starting the new logger's Python on a 2-core machine has delayed one tick by 140 ms
            # here and 209 ms on CI (over 4 control periods of 50 ms), harmless to the robot. The sim
            # reports whether its watchdog is tripped at report time, and the oldest command it held
            # since the last report, which catches a trip in between.
            timeout = node_parameter(next(n for n in sim_graph() if n.name == "sim"), "command_timeout_s")
            robot = diagnostic_statuses(diags, "mbrl_ros: sim")  # about one a second since the kill
            assert len(robot) >= 3, f"{len(robot)} sim diagnostics since the kill"
            assert not any(r["command_timed_out"] == "True" for r in robot), robot
            oldest_command = max(float(r["command_age_max_s"]) for r in robot)
            assert oldest_command < timeout, robot
            assert gap < timeout, \
                f"longest command gap {gap * 1e3:.0f} ms over the {recovered_at - kill_at:.1f} s of crash and " \
                f"restart, {baseline_gap * 1e3:.0f} ms over the 8 s before and the 5 s after"
            assert proc.poll() is None, tail()
            text = log.read_text(errors="replace")
            assert re.search(rf"logger \(pid {logger_pid}\) exited with code -9 \(SIGKILL\); restarting it in",
                             text), text[-3000:]
            segments = sorted(p.name for p in (data / "bags").iterdir())
            assert len(segments) >= 2, segments  # the crashed one, and the new logger's

            sim_pid = _pids(log, "sim")[0]
            os.kill(controller_pid, signal.SIGKILL)
            code = proc.wait(timeout=60)
            print(f"gaps: baseline {baseline_gap * 1e3:.0f} ms, logger crash + restart {gap * 1e3:.0f} ms; "
                  f"oldest command at the robot {oldest_command * 1e3:.0f} ms")
    finally:
        if proc.poll() is None:
            stop(proc)
    text = log.read_text(errors="replace")
    assert code == 128 + signal.SIGKILL, text[-3000:]
    assert re.search(rf"required node controller \(pid {controller_pid}\) exited with code -9 \(SIGKILL\); "
                     r"stopping the graph", text), text[-3000:]
    for pid in (sim_pid, new_logger):  # the rest of the graph was stopped, not orphaned
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
