"""The running graph under attack: a hostile publisher and a broken-bundle feeder (issue #29).

    .venv/bin/python benchmarks/bench_faults.py              # full run, ~4 min on 2 busy cores
    .venv/bin/python benchmarks/bench_faults.py --quick      # a smoke run (tests/test_fault_bench.py)

Starts the simulated graph (`sim_graph`: sim + controller, real processes, the shipped reacher
model copied into a scratch store that is the controller's model_store) and watches the command
topic from this process. Three phases, in this one run:

1. baseline: no faults, `--baseline-s` seconds;
2. hostile publisher: a separate process publishes every malformed message kind
   (fault_kinds.hostile_messages: images of wrong size/encoding/step/data, NaN/inf/huge joint
   states, wrong joint names/counts, future/past/invalid stamps, odd episode numbers) round-robin at
   `--rate` msg/s on the controller's input topics, beside the sim's real ones;
3. broken-bundle feeder: every kind in fault_kinds.bundle_kinds (corrupt/truncated/linked/huge
   files, FIFOs, escaping links, re-sealed manifests with ±10 limits or other versions, bad seals,
   NaN/inf-producing graphs, broken CURRENT files, ...) is published into the store in turn, each
   waited on until the controller refuses it (its log or /diagnostics) or `--kind-timeout` passes;
4. both at once (unless --no-both): the hostile publisher runs while every kind is fed again.

Prints per phase the command count, p50/p99/max command interval (observer wall time: includes
this process's own scheduling) and the gaps over 1.5 control periods, the sim's own report of the
oldest command its actuators held (sim time), the controller's tick modes, and overall: bad
commands (outside the robot's MJCF limits or non-finite; must be 0), bundles loaded (must be 0),
crashes (processes that died or did not exit 0 on SIGINT; must be 0). The last line is
`RESULT {json}`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import isolate_ros, p50_p99, print_header  # noqa: E402

ENV_ID = "mbrl_ros/Reacher2D-v0"
QUICK_KINDS = ("action_spec ±10, re-sealed", "version names another folder", "manifest: a FIFO",
               "manifest: 200 MiB (sparse)", "version folder: symlink out of the store",
               "step.onnx: random bytes, sha256 updated", "filter.onnx: NaN weights (NaN-producing graph)",
               "seal: checksum wrong")


# ------------------------------------------------------------------------------------ hostile worker
def hostile_worker(args) -> int:
    """The hostile publisher process: every malformed kind, round-robin, at args.rate msg/s."""
    import rclpy
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Int64

    from fault_kinds import hostile_messages
    from mbrl_ros.nodes.common import EVENT_QOS, SENSOR_QOS

    rclpy.init()
    node = rclpy.create_node("hostile_publisher", namespace=args.namespace or None)
    pubs = {"image": node.create_publisher(Image, "camera/image_raw", SENSOR_QOS),
            "joints": node.create_publisher(JointState, "joint_states", SENSOR_QOS),
            "episode": node.create_publisher(Int64, "mbrl/episode", EVENT_QOS)}
    messages = []
    for kind, target, f in hostile_messages(args.image_size, args.joint_names.split(",")):
        if target == "image":
            msg = Image(height=f["height"], width=f["width"], encoding=f["encoding"], step=f["step"])
            msg.data = f["data"]
        elif target == "joints":
            msg = JointState(name=f["name"], position=f["position"], velocity=f["velocity"])
        else:
            msg = Int64(data=f["data"])
        if target != "episode":
            msg.header.stamp.sec, msg.header.stamp.nanosec = f["sec"], f["nanosec"]
        messages.append((kind, pubs[target], msg))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(p.get_subscription_count() for p in pubs.values()):
        time.sleep(0.05)
    counts = {kind: 0 for kind, _, _ in messages}
    print("publishing", flush=True)
    stop_file = Path(args.stop_file) if args.stop_file else None
    # CLOCK_MONOTONIC is one clock for every process: the bench takes the phase from these
    period, start, i = 1.0 / args.rate, time.monotonic(), 0
    while time.monotonic() - start < args.seconds:
        if stop_file is not None and i % 50 == 0 and stop_file.exists():
            break
        kind, pub, msg = messages[i % len(messages)]
        pub.publish(msg)
        counts[kind] += 1
        i += 1
        time.sleep(max(0.0, start + i * period - time.monotonic()))
    node.destroy_node()
    rclpy.shutdown()
    print(json.dumps({"start": start, "end": time.monotonic(), "counts": counts}), flush=True)
    return 0


# ------------------------------------------------------------------------------------------ watcher
class Watch:
    """Commands (arrival time, values) and the controller's and sim's diagnostics, on a spin thread."""

    def __init__(self, namespace: str):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from std_msgs.msg import Float64MultiArray

        from mbrl_ros.nodes.common import COMMAND_QOS

        self.rclpy = rclpy
        rclpy.init()
        self.node = rclpy.create_node("bench_faults_watch", namespace=namespace or None)
        self.commands: list[tuple[float, tuple]] = []
        self.diag: dict[str, dict] = {}
        self.sim_ages: list[tuple[float, float]] = []  # (arrival, oldest command held since the last report)
        self.ticks: list[tuple[float, dict]] = []
        ns = namespace.strip("/")
        self.ctl_name = f"mbrl_ros: {ns + '/' if ns else ''}controller"
        self.sim_name = f"mbrl_ros: {ns + '/' if ns else ''}sim"
        self.node.create_subscription(Float64MultiArray, "mbrl/commands",
                                      lambda m: self.commands.append((time.monotonic(), tuple(m.data))), COMMAND_QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        executor = self.rclpy.executors.SingleThreadedExecutor()
        executor.add_node(self.node)
        while not self.stop.is_set():
            executor.spin_once(timeout_sec=0.05)
        executor.shutdown()

    def _on_diag(self, msg):
        now = time.monotonic()
        for s in msg.status:
            values = {kv.key: kv.value for kv in s.values}
            self.diag[s.name] = values
            if s.name == self.sim_name and "command_age_max_s" in values:
                self.sim_ages.append((now, float(values["command_age_max_s"])))
            if s.name == self.ctl_name:
                self.ticks.append((now, {k[6:]: int(v) for k, v in values.items()
                                         if k.startswith("ticks_") and v.isdigit()}))

    def ctl(self, key: str, default: str = "") -> str:
        return self.diag.get(self.ctl_name, {}).get(key, default)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.node.destroy_node()
        self.rclpy.shutdown()


class LogTail:
    """New text of a growing log file."""

    def __init__(self, path: Path):
        self.path, self.offset, self.text = path, 0, ""

    def read(self) -> str:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return self.text
        self.offset += len(chunk)
        self.text += chunk.decode("utf-8", "replace")
        return self.text


# ---------------------------------------------------------------------------------------- the run
def phase_stats(watch: Watch, t0: float, t1: float, period: float) -> dict:
    import numpy as np

    times = np.array([t for t, _ in watch.commands if t0 <= t <= t1])
    gaps = np.diff(times) * 1e3 if times.size > 1 else np.array([])
    p50, p99 = p50_p99(gaps) if gaps.size else (float("nan"), float("nan"))
    ages = [a for t, a in watch.sim_ages if t0 + 1.0 <= t <= t1 + 1.0]  # each report covers the second before it
    before = [c for t, c in watch.ticks if t <= t0]
    after = [c for t, c in watch.ticks if t <= t1 + 1.0]
    modes = {}
    if before and after:
        modes = {k: v - before[-1].get(k, 0) for k, v in after[-1].items() if v - before[-1].get(k, 0)}
    return {"seconds": round(t1 - t0, 1), "commands": int(times.size), "interval_p50_ms": round(p50, 1),
            "interval_p99_ms": round(p99, 1), "interval_max_ms": round(float(gaps.max()), 1) if gaps.size else None,
            "gaps_over_1.5_periods": int((gaps > 1.5 * period * 1e3).sum()),
            "sim_oldest_command_held_max_s": round(max(ages), 3) if ages else None, "tick_modes": modes}


def worst_kinds(watch: Watch, windows: list[tuple[str, float]], end: float, top: int = 5) -> list:
    """The kinds whose time in the store (publish to the next publish) saw the longest command gaps."""
    import numpy as np

    times = np.array([t for t, _ in watch.commands])
    out = []
    for i, (label, start) in enumerate(windows):
        stop = windows[i + 1][1] if i + 1 < len(windows) else end
        # a gap belongs to a window when its later command arrived in it
        idx = np.nonzero((times > start) & (times <= stop))[0]
        idx = idx[idx > 0]
        if idx.size:
            out.append((label, round(float((times[idx] - times[idx - 1]).max() * 1e3), 1)))
    return sorted(out, key=lambda x: -x[1])[:top]


def feed_good_control(store: Path, good: str, watch: Watch, log: LogTail, timeout: float) -> bool:
    """Publish a good bundle (the running one under a new version, re-sealed) after the broken ones:
    the controller must take it, which shows the benchmark would see a loaded bundle."""
    from fault_kinds import Bundle
    from mbrl_ros.fileio import atomic_write_text
    from mbrl_ros.runtime.store_layout import CURRENT, version_name

    name = version_name(999990, 0)
    Bundle(store / good, store / name).write_manifest()
    if not (store / CURRENT).is_file():  # the last broken kind may have left a folder there
        (store / CURRENT).rmdir()
    atomic_write_text(store / CURRENT, name + "\n")
    deadline = time.monotonic() + timeout + 5.0
    while time.monotonic() < deadline:
        if f"now running {name}" in log.read() or watch.ctl("model_version") == name:
            return True
        time.sleep(0.05)
    return False


def feed(kinds, store: Path, watch: Watch, log: LogTail, timeout: float, check_alive) -> dict:
    """Publish each kind in turn and wait (up to `timeout`) until the controller's log or
    /diagnostics shows it refused; only log text written after the publish counts."""
    import numpy as np

    confirmed, unconfirmed, took, windows = 0, [], [], []
    for kind in kinds:
        if kind.current is None and (store / "CURRENT").is_dir():  # left by "CURRENT: a directory"
            (store / "CURRENT").rmdir()
        mark = len(log.read())
        start = time.monotonic()
        kind.publish(store)
        seen = False
        while time.monotonic() - start < timeout:
            new = log.read()[mark:]
            if kind.current is not None:
                seen = "refused CURRENT" in new
            else:
                seen = f"refused {kind.version}" in new or watch.ctl("last_refused_version") == kind.version \
                    or watch.ctl("trained_last_refused_version") == kind.version
            if seen:
                break
            check_alive()
            time.sleep(0.01)
        took.append(time.monotonic() - start)
        windows.append((kind.label, start))
        if seen:
            confirmed += 1
        else:
            unconfirmed.append(kind.label)
            print(f"   no refusal seen within {timeout} s: {kind.label} ({kind.version})", flush=True)
    return {"confirmed": confirmed, "unconfirmed": unconfirmed, "windows": windows,
            "took": {"p50": round(float(np.median(took)), 3), "max": round(max(took), 3)}}


def run_bench(args) -> dict:
    import numpy as np
    import yaml

    import mbrl_ros.envs as envs
    from fault_kinds import build_all, bundle_kinds, hostile_messages
    from mbrl_ros.bringup.graph import sim_graph
    from mbrl_ros.bringup.launcher import node_command
    from mbrl_ros.paths import config_dir, models_dir
    from mbrl_ros.runtime.store_layout import read_current

    work = Path(tempfile.mkdtemp(prefix="bench_faults_"))
    try:
        store, outside = work / "store", work / "outside"
        shutil.copytree(models_dir() / "reacher2d", store, ignore=shutil.ignore_patterns("checkpoint.pt"))
        outside.mkdir()
        good = read_current(store)
        kinds = bundle_kinds(store, good, outside)
        if args.quick:
            kinds = [k for k in kinds if k.label in QUICK_KINDS]
        t = time.perf_counter()
        build_all(store, kinds)
        print(f"built {len(kinds)} broken bundle kinds in {time.perf_counter() - t:.1f} s", flush=True)

        env = envs.make(ENV_ID, render_image=False)
        spec, u = env.unwrapped.action_spec, env.unwrapped
        low, high = np.asarray(spec.low, float), np.asarray(spec.high, float)
        joint_names = list(u.joint_names)  # what the sim's JointState names
        env.close()

        params = yaml.safe_load((config_dir() / "ros" / "sim.yaml").read_text())
        params["controller"]["ros__parameters"]["model_poll_s"] = args.poll_s
        params_file = work / "params.yaml"
        params_file.write_text(yaml.safe_dump(params))
        given = {"env_id": ENV_ID, "record": "false", "train": "false", "model_store": str(store),
                 "params_file": str(params_file), "data_dir": str(work / "data")}
        if args.namespace:
            given["namespace"] = args.namespace
        nodes = sim_graph(given)
        period = 1.0 / float(params["controller"]["ros__parameters"].get("control_rate_hz", 20.0))
        logs = {n.name: work / f"{n.name}.log" for n in nodes}
        procs = {n.name: subprocess.Popen(node_command(n), stdout=open(logs[n.name], "wb"), stderr=subprocess.STDOUT,
                                          start_new_session=True) for n in nodes}
        ctl_log = LogTail(logs["controller"])
        watch = Watch(nodes[0].namespace)
        died: dict[str, int] = {}

        def check_alive():
            for name, proc in procs.items():
                if proc.poll() is not None and name not in died:
                    died[name] = proc.returncode
                    print(f"!! {name} exited with {proc.returncode}", flush=True)

        def wait(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                check_alive()
                time.sleep(0.05)

        result = {"kinds_bundles": len(kinds)}
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and (len(watch.commands) < 40 or not watch.ctl("model_version")):
                check_alive()
                if died:
                    raise RuntimeError(f"graph died at start-up: {died}\n" + ctl_log.read()[-3000:])
                time.sleep(0.1)
            if len(watch.commands) < 40:
                raise RuntimeError("no commands from the controller within 240 s\n" + ctl_log.read()[-3000:])
            start_version = watch.ctl("model_version")
            if start_version in ("", "none"):
                raise RuntimeError("the controller runs no model, so nothing would be measured: "
                                   + watch.ctl("last_refusal_reason", "see its log") + "\n" + ctl_log.read()[-2000:])
            running_before = len(re.findall(r"now running", ctl_log.read()))
            print(f"graph up: controller on {start_version}, {len(watch.commands)} commands so far", flush=True)

            phases = {}
            t0 = time.monotonic()
            wait(args.baseline_s)
            phases["baseline"] = (t0, time.monotonic())

            t0 = time.monotonic()
            def worker_command(seconds):
                return [sys.executable, __file__, "--hostile-worker", "--seconds", str(seconds), "--rate",
                        str(args.rate), "--namespace", nodes[0].namespace, "--image-size", str(64),
                        "--joint-names", ",".join(joint_names)]

            worker = subprocess.run(worker_command(args.hostile_s), capture_output=True, text=True,
                                    timeout=args.hostile_s + 60)
            if worker.returncode != 0:
                raise RuntimeError(f"hostile worker failed: {worker.stderr[-2000:]}")
            report_ = json.loads(worker.stdout.strip().splitlines()[-1])
            sent = report_["counts"]
            phases["hostile"] = (report_["start"], report_["end"])
            result["hostile_kinds"] = len(sent)
            result["hostile_messages"] = sum(sent.values())
            result["hostile_by_target"] = {
                target: sum(sent[k] for k, tg, _ in hostile_messages(64, joint_names) if tg == target)
                for target in ("image", "joints", "episode")}
            wait(2.0)  # let the controller settle: not measured

            t0 = time.monotonic()
            fed = feed(kinds, store, watch, ctl_log, args.kind_timeout, check_alive)
            wait(2.0)
            phases["bundles"] = (t0, time.monotonic())
            windows = fed["windows"]
            result["bundles_refusal_seen"] = fed["confirmed"]
            result["bundles_refusal_not_seen"] = fed["unconfirmed"]
            result["refusal_seen_after_s"] = fed["took"]
            unconfirmed = fed["unconfirmed"]
            windows_both = []

            if args.both:
                # both at once: the hostile publisher runs while every kind is fed a second time
                stop_file = work / "stop-hostile"
                worker = subprocess.Popen(worker_command(3600.0) + ["--stop-file", str(stop_file)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                worker.stdout.readline()  # "publishing": it has matched the controller's subscriptions
                t0 = time.monotonic()
                fed2 = feed(kinds, store, watch, ctl_log, args.kind_timeout, check_alive)
                phases["both"] = (t0, time.monotonic())
                stop_file.touch()
                out, err = worker.communicate(timeout=60)
                if worker.returncode != 0:
                    raise RuntimeError(f"hostile worker failed: {err[-2000:]}")
                result["both"] = {"hostile_messages": sum(json.loads(out.strip().splitlines()[-1])["counts"].values()),
                                  "bundles_refusal_seen": fed2["confirmed"],
                                  "bundles_refusal_not_seen": fed2["unconfirmed"]}
                windows_both = fed2["windows"]
                unconfirmed = sorted(set(unconfirmed) | set(fed2["unconfirmed"]))
                wait(2.0)
            wait(1.5)  # the last diagnostics of the phase
            end_version = watch.ctl("model_version")
            running_after = len(re.findall(r"now running", ctl_log.read()))
            # every swap logs "now running"; a changed version without one still counts once
            result["bundles_loaded"] = max(running_after - running_before, int(end_version != start_version))
            result["bundles_loaded_kinds"] = unconfirmed if result["bundles_loaded"] else []
            if args.control_good:
                result["control_good_loaded"] = feed_good_control(store, good, watch, ctl_log, args.kind_timeout)
            result["model_version"] = {"before": start_version, "after": end_version}
        finally:
            check_alive()
            crashed_before_stop = dict(died)
            codes = {}
            for name in ("controller", "sim"):
                proc = procs.get(name)
                if proc is None:
                    continue
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGINT)
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait(5)
                codes[name] = proc.returncode
            time.sleep(0.3)
            watch.close()

        vals = np.array([c for _, c in watch.commands], dtype=float)
        ok = np.isfinite(vals).all(axis=1) & (vals >= low - 1e-9).all(axis=1) & (vals <= high + 1e-9).all(axis=1)
        tracebacks = {name: path.read_text(errors="replace").count("Traceback") for name, path in logs.items()}
        result.update({
            "commands": int(len(vals)), "bad_commands": int((~ok).sum()),
            "crashes": len(crashed_before_stop) + sum(1 for c in codes.values() if c != 0),
            "exit_codes": codes, "tracebacks_in_logs": tracebacks,
            "phases": {name: phase_stats(watch, a, b, period) for name, (a, b) in phases.items()},
            "control_period_ms": period * 1e3})
        base, bundles = result["phases"]["baseline"], result["phases"]["bundles"]
        for name in [n for n in result["phases"] if n != "baseline"]:
            p = result["phases"][name]
            p["p99_ratio_vs_baseline"] = round(p["interval_p99_ms"] / base["interval_p99_ms"], 2) \
                if base["interval_p99_ms"] else None
        result["longest_gap_during_store_activity_ms"] = bundles["interval_max_ms"]
        result["worst_kinds_by_gap_ms"] = worst_kinds(watch, windows, phases["bundles"][1])
        if windows_both:
            result["both"]["worst_kinds_by_gap_ms"] = worst_kinds(watch, windows_both, phases["both"][1])
        return result
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


def report(result: dict) -> None:
    print()
    print(f"bad commands (outside the robot's limits or non-finite): {result['bad_commands']} of "
          f"{result['commands']}   (must be 0)")
    print(f"bundles loaded: {result['bundles_loaded']} of {result['kinds_bundles']} broken kinds fed "
          f"(refusal seen for {result['bundles_refusal_seen']}; p50 {result['refusal_seen_after_s']['p50']} s, "
          f"max {result['refusal_seen_after_s']['max']} s after publishing)   (must be 0)")
    print(f"crashes: {result['crashes']}   (exit codes on SIGINT {result['exit_codes']}; "
          f"tracebacks in logs {result['tracebacks_in_logs']})")
    print(f"hostile messages: {result['hostile_messages']} of {result['hostile_kinds']} kinds "
          f"({result['hostile_by_target']})")
    print(f"longest command gap while the store was fed: {result['longest_gap_during_store_activity_ms']} ms "
          f"(control period {result['control_period_ms']:.0f} ms; target <= {1.5 * result['control_period_ms']:.0f}); "
          f"worst kinds: {result['worst_kinds_by_gap_ms']}")
    if result["bundles_loaded"]:
        print(f"LOADED (no refusal seen): {result['bundles_loaded_kinds']}")
    if "both" in result:
        b = result["both"]
        print(f"both at once: {b['hostile_messages']} hostile messages while the {result['kinds_bundles']} kinds were "
              f"fed again; refusal seen for {b['bundles_refusal_seen']}; worst kinds: {b.get('worst_kinds_by_gap_ms')}")
    if "control_good_loaded" in result:
        print(f"control: a good bundle published afterwards was loaded: {result['control_good_loaded']}")
    print()
    print(f"{'phase':<10} {'s':>6} {'cmds':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'>1.5T':>6} "
          f"{'p99/base':>8} {'sim held max s':>14}  tick modes")
    for name, p in result["phases"].items():
        print(f"{name:<10} {p['seconds']:>6} {p['commands']:>6} {p['interval_p50_ms']:>7} {p['interval_p99_ms']:>7} "
              f"{p['interval_max_ms']!s:>7} {p['gaps_over_1.5_periods']:>6} {p.get('p99_ratio_vs_baseline', 1.0)!s:>8} "
              f"{p['sim_oldest_command_held_max_s']!s:>14}  {p['tick_modes']}")
    print("RESULT " + json.dumps(result), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few bundle kinds, short phases")
    parser.add_argument("--baseline-s", type=float, default=None, help="baseline phase (default 30, quick 3)")
    parser.add_argument("--hostile-s", type=float, default=None, help="hostile phase (default 30, quick 3)")
    parser.add_argument("--rate", type=float, default=200.0, help="hostile messages per second")
    parser.add_argument("--kind-timeout", type=float, default=5.0, help="wait this long for each refusal")
    parser.add_argument("--poll-s", type=float, default=0.05, help="the controller's model_poll_s")
    parser.add_argument("--namespace", default="", help="run the graph in this namespace")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, store)")
    parser.add_argument("--control-good", action="store_true",
                        help="after the broken bundles, publish a good one and report whether it was loaded "
                             "(a check of the benchmark itself)")
    parser.add_argument("--hostile-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--image-size", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--joint-names", default="", help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", default="", help=argparse.SUPPRESS)
    parser.add_argument("--no-both", dest="both", action="store_false",
                        help="skip the last phase (hostile publisher and a second pass of the feeder at once)")
    args = parser.parse_args()
    isolate_ros()
    if args.hostile_worker:
        return hostile_worker(args)
    args.baseline_s = args.baseline_s if args.baseline_s is not None else (3.0 if args.quick else 30.0)
    args.hostile_s = args.hostile_s if args.hostile_s is not None else (3.0 if args.quick else 30.0)
    print_header("fault benchmark: hostile publisher + broken-bundle feeder against sim + controller",
                 {"baseline_s": args.baseline_s, "hostile_s": args.hostile_s, "rate": args.rate,
                  "kind_timeout": args.kind_timeout, "model_poll_s": args.poll_s, "quick": args.quick,
                  "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID")})
    result = run_bench(args)
    report(result)
    failed = result["bad_commands"] or result["bundles_loaded"] or result["crashes"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
