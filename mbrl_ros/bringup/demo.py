"""`mbrl-ros demo`: the main job. The simulated robot, controlled by planning in the shipped
model, recorded and learning as it runs; one progress line per episode.

    mbrl-ros demo                       # 10 episodes of the default camera reacher
    mbrl-ros demo --episodes 0          # until Ctrl-C
    mbrl-ros demo --video reacher.gif   # also save what the camera saw
    mbrl-ros demo planner:=mcts train:=false

Starts the same node graph as `ros2 launch mbrl_ros sim.launch.py` (mbrl_ros.bringup.graph)
as separate processes, supervised as `mbrl-ros launch` does (a crashed logger or trainer is
restarted, a crashed sim or controller ends the demo), and watches it from a small rclpy node
of its own.
"""
from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import numpy as np

from mbrl_ros.bringup.graph import sim_graph
from mbrl_ros.bringup.launcher import parse_launch_arguments


def register(parser):
    parser.add_argument("arguments", nargs="*", metavar="name:=value",
                        help="sim graph launch arguments (see `mbrl-ros launch sim --list`)")
    parser.add_argument("--episodes", type=int, default=10, help="stop after this many episodes (0: run until Ctrl-C)")
    parser.add_argument("--video", type=Path, default=None,
                        help="save a GIF of the last episodes: camera beside the model's imagined future")
    parser.add_argument("--timeout", type=float, default=0.0, help="give up after this many wall seconds (0: never)")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="ROS_DOMAIN_ID for the graph (default: keep the environment's, else a random one)")


class Monitor:
    """Subscribes to the graph's outputs and keeps per-episode returns and the latest diagnostics."""

    def __init__(self, node, record_commands: bool = False):
        from diagnostic_msgs.msg import DiagnosticArray
        from std_msgs.msg import Float64, Int64

        from mbrl_ros.nodes.common import EVENT_QOS, status_name

        self.returns: list[float] = []  # finished episodes
        self.current, self.episode, self.steps = 0.0, None, 0
        self.diag: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()
        # relative names: the monitor sits in the graph's namespace; statuses carry it (status_name)
        self.status_name = lambda name: status_name(node, name)
        node.create_subscription(Float64, "mbrl/reward", self._on_reward, EVENT_QOS)
        node.create_subscription(Int64, "mbrl/episode", self._on_episode, EVENT_QOS)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.ticks: list[dict[str, str]] = []  # the controller's diagnostics at each episode's end
        self.command_times: list[float] = []  # wall arrival times of commands (record_commands)
        self.trainer_steps: list[int] = []  # the trainer's step count at each episode's end (0: none)
        self.episode_ends: list[float] = []  # wall (monotonic) time of each episode's end
        if record_commands:
            from std_msgs.msg import Float64MultiArray

            from mbrl_ros.nodes.common import COMMAND_QOS

            node.create_subscription(Float64MultiArray, "mbrl/commands",
                                     lambda _msg: self.command_times.append(time.monotonic()), COMMAND_QOS)

    def _on_reward(self, msg):
        with self.lock:
            self.current += msg.data
            self.steps += 1

    def _on_episode(self, msg):
        with self.lock:
            if self.episode is not None and self.steps > 0:
                self.returns.append(self.current)
                self.ticks.append(dict(self.diag.get(self.status_name("mbrl_ros: controller"), {})))
                self.trainer_steps.append(int(self.diag.get(self.status_name("mbrl_ros: trainer"), {}).get(
                    "train_step", 0)))
                self.episode_ends.append(time.monotonic())
                self.print_line()
            self.episode, self.current, self.steps = msg.data, 0.0, 0

    def _on_diag(self, msg):
        for status in msg.status:
            self.diag[status.name] = {kv.key: kv.value for kv in status.values}

    def print_line(self):
        ctl = self.diag.get(self.status_name("mbrl_ros: controller"), {})
        trn = self.diag.get(self.status_name("mbrl_ros: trainer"), {})
        parts = [f"episode {len(self.returns):3d}", f"return {self.returns[-1]:8.2f}",
                 f"model {ctl.get('model_version', '?')} ({ctl.get('model_source', '?')})",
                 f"tick p50 {float(ctl.get('tick_p50_ms', 'nan')):.1f} ms p99 {float(ctl.get('tick_p99_ms', 'nan')):.1f} ms"]
        if trn:
            parts.append(f"train step {trn.get('train_step', '0')}")
        print(" | ".join(parts), flush=True)


def run(args) -> int:
    import signal

    if args.domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    elif "ROS_DOMAIN_ID" not in os.environ:
        os.environ["ROS_DOMAIN_ID"] = str(random.randint(1, 101))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    given = parse_launch_arguments(args.arguments)
    nodes = sim_graph(given)
    print(f"[demo] starting {', '.join(n.name for n in nodes)} (ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}); "
          "Ctrl-C stops everything", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    code, monitor = run_graph(nodes, episodes=args.episodes, timeout_s=args.timeout, stop=stop)
    if monitor.returns:
        r = np.array(monitor.returns)
        print(f"[demo] {len(r)} episodes: mean return {r.mean():.2f} (first {r[0]:.2f}, last {r[-1]:.2f})", flush=True)
    if args.video:
        save_video(args.video, nodes, episodes=max(1, min(3, len(monitor.returns))))
    return code


def run_graph(nodes, episodes: int = 0, timeout_s: float = 0.0, stop: threading.Event | None = None,
              record_commands: bool = False, until=None) -> tuple[int, "Monitor"]:
    """Start `nodes`, supervised as `mbrl-ros launch` does (background nodes niced, logger and trainer
    respawned, a required node's exit ends the run), and watch them until `episodes` have finished,
    `until(monitor)` is true, `timeout_s` has passed or `stop` is set. Returns (exit code, the Monitor)."""
    import rclpy

    from mbrl_ros.bringup.launcher import Supervised, supervise_once, stop_all
    from mbrl_ros.bringup.supervision import RESPAWN

    stop = stop or threading.Event()
    supervised = [Supervised(n, RESPAWN) for n in nodes]
    for s in supervised:
        s.start()
    rclpy.init()
    node = rclpy.create_node("mbrl_demo_monitor", namespace=nodes[0].namespace or None)
    monitor = Monitor(node, record_commands=record_commands)
    start = time.monotonic()
    code = 0
    try:
        while not stop.is_set():
            rclpy.spin_once(node, timeout_sec=0.1)
            code = supervise_once(supervised)
            if code:
                print("[demo] a required node exited; stopping", flush=True)
                break
            if episodes and len(monitor.returns) >= episodes:
                break
            if until is not None and until(monitor):
                break
            if timeout_s and time.monotonic() - start > timeout_s:
                print("[demo] timeout", flush=True)
                code = 1
                break
    finally:
        stop_all({s.spec.name: s.proc for s in supervised if s.proc is not None}, grace_s=15.0)
        node.destroy_node()
        rclpy.shutdown()
    return code, monitor


def save_video(out: Path, nodes, episodes: int) -> None:
    """Real camera beside the model's imagined future, from the bags this run's logger closed."""
    import tempfile

    import mbrl_ros.envs as envs
    from mbrl_ros.data.bags import IngestConfig, ingest_bags
    from mbrl_ros.data.episodes import EpisodeCache
    from mbrl_ros.training.imagination_video import save_imagination_video

    spec = {n.name: n.parameters for n in nodes}
    if "logger" not in spec:
        print("[demo] --video needs the logger (record:=true)", flush=True)
        return
    env = envs.make(spec["sim"]["env_id"])
    cache = EpisodeCache(Path(tempfile.mkdtemp(prefix="mbrl_demo_video_")))
    ingest_bags([Path(spec["logger"]["output_dir"])], cache, IngestConfig.for_env(env, active_grace_s=0.0),
                progress=False)
    env.close()
    recorded = cache.episodes()[-episodes:]
    trained = Path(spec["trainer"]["work_dir"]) / "checkpoint.pt" if "trainer" in spec else None
    checkpoint = trained if trained and trained.exists() else Path(spec["controller"]["model_store"]) / "checkpoint.pt"
    if not recorded or not checkpoint.exists():
        print(f"[demo] no video: {len(recorded)} recorded episodes, checkpoint {checkpoint} "
              f"{'found' if checkpoint.exists() else 'missing'}", flush=True)
        return
    n = save_imagination_video(checkpoint, recorded, out)
    print(f"[demo] video: {out} ({n} frames; left the camera, right the model's open-loop imagination "
          f"from {checkpoint})", flush=True)
