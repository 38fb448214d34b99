"""Where does a bundle trained on the stand-in arm drive it? A closed loop without ROS.

The exported bundle runs in the one control path (ControlLoop, ONNX Runtime) against the
stand-in robot's MuJoCo arm (tests/stand_in_driver.py: same MJCF, servos, limits, 640x480
frames resized as the controller node resizes them), at 20 Hz for --ticks ticks from three
start poses. Prints each start's final pose and distance to --target, and what the model
imagines that holding a pose earns (sum over the bundle's horizon) at the target and at the
final pose. With --checkpoint and --cache (needs torch) also the reward head's R^2 on the
relabelled episodes' posterior states. docs/stand_in_robot.md ("Measured") quotes it:

    python scripts/stand_in_closed_loop.py runs/models/arm --target 0.8,-1.0 \
        --checkpoint runs/arm-reach/checkpoint.pt --cache runs/arm-reach/cache
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mujoco
from PIL import Image

from mbrl_ros.runtime.belief import BeliefFilter
from mbrl_ros.runtime.control import ControlConfig, ControlLoop, Observation
from mbrl_ros.runtime.model_store import ModelStore
from mbrl_ros.spec import ActionSpec
from tests.stand_in_driver import COMMAND_JOINTS, LIMITS, build_model

STARTS = ([0.0, 0.0], [-1.0, 1.0], [1.2, -0.3])
SUBSTEPS = 25  # 0.05 s of 2 ms physics steps per 20 Hz tick
LOW = np.array([LIMITS[n][0] for n in COMMAND_JOINTS])
HIGH = np.array([LIMITS[n][1] for n in COMMAND_JOINTS])


def frame(renderer, data) -> np.ndarray:
    renderer.update_scene(data, "top")
    return np.asarray(Image.fromarray(renderer.render()).resize((64, 64), Image.BILINEAR))  # as the node does


def observe(data, renderer) -> dict:
    return {"joints": np.concatenate([data.qpos, data.qvel]).astype(np.float32), "image": frame(renderer, data)}


def closed_loop(store: Path, model, renderer, start, ticks: int, planner_config: dict) -> np.ndarray:
    spec = ActionSpec(dim=2, low=tuple(LOW), high=tuple(HIGH), names=COMMAND_JOINTS)
    config = ControlConfig(planner_config=planner_config, on_stale="hold", max_delta=0.2, planning_budget_s=1.0)
    loop = ControlLoop(ModelStore(store, required=True), config, action_spec=spec)
    data = mujoco.MjData(model)
    data.qpos[:] = data.ctrl[:] = start
    mujoco.mj_forward(model, data)
    for k in range(ticks):
        obs = observe(data, renderer)
        t = k * 0.05
        data.ctrl[:] = loop.tick(t, Observation(joints=obs["joints"], joints_stamp=t, image=obs["image"],
                                                image_stamp=t)).command
        for _ in range(SUBSTEPS):
            mujoco.mj_step(model, data)
    return data.qpos.copy()


def imagined_hold_reward(bundle, model, renderer, pose) -> float:
    """The model's summed reward for holding `pose` (commanding it) from rest there."""
    data = mujoco.MjData(model)
    data.qpos[:] = data.ctrl[:] = pose
    mujoco.mj_forward(model, data)
    belief = BeliefFilter(bundle)
    action = ((np.asarray(pose) - (LOW + HIGH) / 2) / ((HIGH - LOW) / 2)).astype(np.float32)
    for k in range(8):
        belief.update(observe(data, renderer), None if k == 0 else action)
    horizon = 5
    rewards, _ = bundle.latent.imagine(belief.state, np.tile(action, (1, horizon, 1)))
    return float(rewards.sum())


def reward_r2(checkpoint: Path, cache: Path) -> float:
    import torch

    from mbrl_ros.data.episodes import EpisodeCache
    from mbrl_ros.world_model.checkpoint import load_world_model

    wm, _ = load_world_model(checkpoint)
    pred, true = [], []
    with torch.no_grad():
        for ep in EpisodeCache(cache).episodes():
            post = wm.observe({k: v[None] for k, v in ep.items()}, sample=False)
            pred.append(wm.reward(post["h"][0, 1:], post["z"][0, 1:]).numpy())
            true.append(ep["reward"][1:])
    pred, true = np.concatenate(pred), np.concatenate(true)
    return float(1 - ((pred - true) ** 2).sum() / ((true - true.mean()) ** 2).sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path, help="model store of the bundle (mbrl-ros export --store)")
    parser.add_argument("--target", default="0.8,-1.0", help="the task's joint target, shoulder,elbow (rad)")
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--planner-config", default='{"num_samples": 64, "num_elites": 8, "iterations": 3}',
                        help="CEM settings (JSON), the test's by default")
    parser.add_argument("--checkpoint", type=Path, help="relabelled checkpoint: print the reward head's R^2")
    parser.add_argument("--cache", type=Path, help="its relabelled episode cache (<relabel out>/cache)")
    args = parser.parse_args()
    target = np.array([float(x) for x in args.target.split(",")])
    model = build_model(640, 480)
    renderer = mujoco.Renderer(model, 480, 640)
    bundle = ModelStore(args.store, required=True).current
    print(f"bundle {bundle.version}, target {target.tolist()}")
    for start in STARTS:
        end = closed_loop(args.store, model, renderer, start, args.ticks, json.loads(args.planner_config))
        print(f"start {start}: distance {np.linalg.norm(np.asarray(start) - target):.2f} -> "
              f"{np.linalg.norm(end - target):.2f} rad, ends at {end.round(2).tolist()}; imagined reward of holding "
              f"there {imagined_hold_reward(bundle, model, renderer, end):.2f}")
    print(f"imagined reward of holding the target: {imagined_hold_reward(bundle, model, renderer, target):.2f}")
    if args.checkpoint and args.cache:
        print(f"reward head R^2 on the relabelled episodes: {reward_r2(args.checkpoint, args.cache):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
