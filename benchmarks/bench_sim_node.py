"""Sim node topic rates over real DDS at a real-time factor (default 1.0), for each robot.

    .venv/bin/python benchmarks/bench_sim_node.py                       # both robots, 10 s each
    .venv/bin/python benchmarks/bench_sim_node.py --seconds 20 --env mbrl_ros/CartpoleSwingup-v0

Starts `sim_node` as its own process (config/ros/sim.yaml: camera 30 Hz, joints 100 Hz),
subscribes from this process, and reports the achieved wall-clock rates, the
sim-time/wall-time ratio and the p50/p99 gap between consecutive messages.
Targets (issue 2): joint states >= 100 Hz and 64x64 camera >= 30 Hz at RTF 1.0.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import isolate_ros, percentiles, print_header  # noqa: E402

isolate_ros()

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402

from mbrl_ros.nodes.common import SENSOR_QOS, stamp_to_sec  # noqa: E402


def measure(env_id: str, seconds: float, rtf: float) -> dict:
    proc = subprocess.Popen([sys.executable, "-m", "mbrl_ros.nodes.sim_node", "--ros-args", "--params-file",
                             str(ROOT / "config" / "ros" / "sim.yaml"), "-p", f"env_id:={env_id}",
                             "-p", f"real_time_factor:={rtf}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    rclpy.init()
    node = rclpy.create_node("bench_sim_rates")
    arrivals = {"camera": [], "joints": []}
    sim_stamps = []
    node.create_subscription(Image, "/camera/image_raw", lambda m: arrivals["camera"].append(time.monotonic()),
                             SENSOR_QOS)
    node.create_subscription(JointState, "/joint_states", lambda m: arrivals["joints"].append(time.monotonic()),
                             SENSOR_QOS)
    node.create_subscription(Clock, "/clock", lambda m: sim_stamps.append((time.monotonic(), stamp_to_sec(m.clock))),
                             10)
    try:
        deadline = time.monotonic() + 60
        while not arrivals["joints"] and time.monotonic() < deadline:  # node start-up (imports, model load)
            rclpy.spin_once(node, timeout_sec=0.1)
        for v in arrivals.values():
            v.clear()
        sim_stamps.clear()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
    finally:
        node.destroy_node()
        rclpy.shutdown()
        proc.send_signal(2)
        proc.wait(15)
    row = {"env": env_id}
    for name, times in arrivals.items():
        gaps = np.diff(times) * 1e3
        row[f"{name}_hz"] = len(times) / seconds
        row[f"{name}_gap_ms"] = percentiles(gaps)
    if len(sim_stamps) > 1:
        (w0, s0), (w1, s1) = sim_stamps[0], sim_stamps[-1]
        row["achieved_rtf"] = (s1 - s0) / (w1 - w0)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", nargs="*", default=["mbrl_ros/Reacher2D-v0", "mbrl_ros/CartpoleSwingup-v0"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rtf", type=float, default=1.0)
    args = parser.parse_args()
    print_header("sim node topic rates over DDS", {"seconds": args.seconds, "real_time_factor": args.rtf,
                                                   "camera": "64x64 @ 30 Hz", "joints": "100 Hz"})
    print(f"{'env':32} {'joints Hz':>9} {'gap p50/p99 ms':>15} {'camera Hz':>9} {'gap p50/p99 ms':>15} {'RTF':>6}")
    for env_id in args.env:
        r = measure(env_id, args.seconds, args.rtf)
        jg, cg = r["joints_gap_ms"], r["camera_gap_ms"]
        print(f"{env_id:32} {r['joints_hz']:9.1f} {jg['p50']:7.1f}/{jg['p99']:<7.1f} {r['camera_hz']:9.1f} "
              f"{cg['p50']:7.1f}/{cg['p99']:<7.1f} {r.get('achieved_rtf', float('nan')):6.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
