"""Env step throughput: steps/s and p50/p99 step time, rendering on and off.

    .venv/bin/python benchmarks/bench_envs.py                 # all ids, 64x64, 400 steps each
    .venv/bin/python benchmarks/bench_envs.py --steps 1000 --ids mbrl_ros/Reacher2D-v0 --image-size 128

Per env id it times `env.step()` (random actions, auto-reset, reset time excluded)
with render_image=True and False; for the MJCF robots it also times the sim-node
pieces on their own: one `physics_step()` and one `render_camera()`, and the
camera with MuJoCo's default quality (4x multisampling, shadows) for comparison.
Prints the command, config, machine and a table; `--json PATH` writes the rows.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

import numpy as np  # noqa: E402

import mbrl_ros.envs as envs  # noqa: E402
from mbrl_ros.envs._mujoco import CameraRenderer, mujoco  # noqa: E402
from mbrl_ros.paths import sim_dir  # noqa: E402


def machine() -> str:
    return f"{common.machine()}; mujoco {mujoco.__version__}; MUJOCO_GL={os.environ.get('MUJOCO_GL')}"


def stats(times_s) -> dict:
    t = np.asarray(times_s) * 1e3
    return {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99)),
            "mean_ms": float(t.mean()), "per_s": float(1e3 / t.mean())}


def time_calls(fn, n: int, warmup: int = 10) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return stats(times)


def bench_steps(env_id: str, render: bool, steps: int, image_size) -> dict:
    env = envs.make(env_id, render_image=render, image_size=image_size)
    env.action_space.seed(0)
    env.reset(seed=0)
    actions = [env.action_space.sample() for _ in range(steps + 10)]
    times = []
    for i, a in enumerate(actions):
        t0 = time.perf_counter()
        _, _, term, trunc, _ = env.step(a)
        dt = time.perf_counter() - t0
        if i >= 10:
            times.append(dt)
        if term or trunc:
            env.reset()
    env.close()
    u = env.unwrapped
    row = {"env_id": env_id, "what": "env.step, image" if render else "env.step, joints only", **stats(times)}
    row["sim_x_realtime"] = row["per_s"] * u.control_dt
    return row


def bench_pieces(env_id: str, n: int, image_size) -> list[dict]:
    env = envs.make(env_id, image_size=image_size)
    u = env.unwrapped
    env.reset(seed=0)
    u.apply_action(np.zeros(u.action_spec.dim))
    rows = [{"env_id": env_id, "what": "physics_step() (1 step)", **time_calls(u.physics_step, n * 10)},
            {"env_id": env_id, "what": "joint_vector()", **time_calls(u.joint_vector, n * 10)},
            {"env_id": env_id, "what": "render_camera()", **time_calls(u.render_camera, n)}]
    # Fresh model copy: the fast renderer already switched multisampling/shadows off on u.model.
    model = mujoco.MjModel.from_xml_path(str(sim_dir() / u.xml_file))
    model.vis.quality.offsamples = 4
    model.vis.quality.shadowsize = 4096
    model.light_castshadow[:] = 1
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    slow = CameraRenderer(model, *u.image_size, camera=u.camera, fast=False)
    rows.append({"env_id": env_id, "what": "camera, default quality (4x MSAA, shadows)",
                 **time_calls(lambda: slow.render(data), max(n // 4, 20))})
    slow.close()
    env.close()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ids", nargs="*", default=list(envs.ENV_IDS))
    p.add_argument("--steps", type=int, default=400, help="timed env steps per (id, render) pair")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--no-pieces", action="store_true", help="skip the per-piece timings")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    print("command:", shlex.join([Path(sys.executable).name] + sys.argv))
    print(f"config:  steps={args.steps} image_size={args.image_size} ids={','.join(args.ids)} "
          f"(random actions, reset excluded)")
    print("machine:", machine())
    rows = []
    for env_id in args.ids:
        for render in (True, False):
            rows.append(bench_steps(env_id, render, args.steps, args.image_size))
        if not args.no_pieces and env_id in envs.ROBOT_IDS:
            rows.extend(bench_pieces(env_id, args.steps, args.image_size))
    print()
    print(f"{'env id':30s} {'what':44s} {'per s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'x realtime':>10s}")
    for r in rows:
        rt = f"{r['sim_x_realtime']:.0f}" if "sim_x_realtime" in r else ""
        print(f"{r['env_id']:30s} {r['what']:44s} {r['per_s']:10.0f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {rt:>10s}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "config": vars(args) | {"json": str(args.json)},
                                         "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
