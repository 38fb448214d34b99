"""What /clock costs a node that sets use_sim_time, at each clock rate.

    .venv/bin/python benchmarks/bench_clock_cost.py                      # 50, 100, 200 Hz; 15 s each
    .venv/bin/python benchmarks/bench_clock_cost.py --rates 100 --seconds 30

Starts `sim_node` (camera off, so only its clock and joint states are on the wire) as its
own process at each --rates value and, in this process, spins an idle rclpy node for
--seconds with use_sim_time true and then false (the baseline: same node, same executor,
no /clock subscription). Reports the CPU time this process used, as % of one core, and
the clock messages per second it received. Every node in the sim graph that sets
use_sim_time (controller, logger) pays this in Python for every /clock message.
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
from common import isolate_ros, print_header  # noqa: E402

isolate_ros()

import rclpy  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402


def idle_node_cpu(use_sim_time: bool, seconds: float) -> tuple[float, float]:
    """(% of one core, clock updates per second) of an idle node spinning for `seconds`."""
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bench_clock_cost", context=context,
                             parameter_overrides=[Parameter("use_sim_time", Parameter.Type.BOOL, use_sim_time)])
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        if use_sim_time:  # wait until the sim's clock is heard
            deadline = time.monotonic() + 60
            while node.get_clock().now().nanoseconds == 0 and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
        updates, last = 0, node.get_clock().now().nanoseconds
        cpu0, end = time.process_time(), time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
            now = node.get_clock().now().nanoseconds
            if use_sim_time and now != last:
                updates, last = updates + 1, now
        return (time.process_time() - cpu0) / seconds * 100, updates / seconds
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,100,200", help="clock rates to try (Hz, sim time)")
    parser.add_argument("--seconds", type=float, default=15.0, help="per measurement")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print_header("CPU an idle use_sim_time node spends on /clock",
                 {"rates_hz": rates, "seconds": args.seconds, "real_time_factor": 1.0, "camera": "off"})
    print(f"{'clock Hz':>8} {'heard/s':>8} {'cpu % sim time':>15} {'cpu % wall time':>16} {'per message ms':>15}")
    for rate in rates:
        sim = subprocess.Popen([sys.executable, "-m", "mbrl_ros.nodes.sim_node", "--ros-args", "-p",
                                f"clock_rate_hz:={rate}", "-p", "publish_camera:=false"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            with_clock, heard = idle_node_cpu(True, args.seconds)
            without, _ = idle_node_cpu(False, args.seconds)
        finally:
            sim.terminate()
            sim.wait(30)
        per_msg = (with_clock - without) / 100 / heard * 1e3 if heard else float("nan")
        print(f"{rate:>8.0f} {heard:>8.1f} {with_clock:>15.1f} {without:>16.1f} {per_msg:>15.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
