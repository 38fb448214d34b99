"""Goal images as a run-time task: the goal frame's latent, the similarity reward the planners see,
and the control loop planning toward a goal with a bundle trained without a reward.

Real MuJoCo frames of the camera reacher, a tiny world model exported to a real ONNX bundle,
ONNX Runtime through ControlLoop. Figures on the trained reacher: benchmarks/bench_goal_images.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mbrl_ros.export import export_to_store
from mbrl_ros.runtime import ModelStore
from mbrl_ros.runtime.control import ControlConfig, ControlLoop, Observation
from mbrl_ros.runtime.goal_task import GoalStore, encode_goal
from mbrl_ros.runtime.latent import LatentState
from mbrl_ros.world_model import WorldModelConfig
from mbrl_ros.world_model.model import WorldModel

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def reward_free_store(tmp_path_factory, reacher_env):
    """A tiny camera-reacher model trained on no reward (has_reward false), exported and published."""
    u = reacher_env.unwrapped
    torch.manual_seed(0)
    wm = WorldModel(WorldModelConfig.preset("tiny").reward_free(), u.obs_spec, u.action_spec.dim).eval()
    store = tmp_path_factory.mktemp("goal_store")
    export_to_store(wm, store, fused_horizon=5, action_spec=u.action_spec, parity_steps=5)
    return store


def _frames(env, seeds):
    out = []
    for s in seeds:
        obs, _ = env.reset(seed=s)
        for _ in range(5):
            obs, *_ = env.step(np.ones(2, np.float32) * (0.5 if s % 2 else -0.5))
        out.append({"image": obs["image"].copy(), "joints": obs["joints"].copy()})
    return out


def test_goal_reward_is_the_latent_distance_to_the_goal(reward_free_store, reacher_env):
    base = ModelStore(reward_free_store, required=True)
    goal, other = _frames(reacher_env, [1, 2])
    store = GoalStore(base, goal)
    bundle = store.current
    assert bundle.manifest.has_reward is False and bundle.task == "goal image"
    latent = bundle.latent
    goal_state = encode_goal(base.current, goal)
    other_state = encode_goal(base.current, other)
    both = LatentState(np.concatenate([goal_state.h, other_state.h]), np.concatenate([goal_state.z, other_state.z]))
    reward = latent.reward(both)
    assert reward[0] == pytest.approx(0.0, abs=1e-6) and reward[1] < -1e-3
    # imagine is the step loop, scored with the goal reward; no value
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (6, 4, 2)).astype(np.float32)
    rewards, values = latent.imagine(goal_state, actions)
    state = goal_state.repeat(6)
    for t in range(4):
        state, r, v = latent.step(state, actions[:, t])
        np.testing.assert_allclose(rewards[:, t], r, rtol=1e-6)
    assert not values.any() and not latent.has_value
    # a frame that does not fit the model is refused naming the problem
    with pytest.raises(ValueError, match="goal frame does not fit model .*image"):
        GoalStore(base, {"image": goal["image"][:32], "joints": goal["joints"]})


@pytest.mark.parametrize("planner", ["cem", "mppi", "mcts"])
def test_a_goal_lets_the_controller_plan_with_a_reward_free_bundle(reward_free_store, reacher_env, planner):
    (goal,) = _frames(reacher_env, [3])
    obs, _ = reacher_env.reset(seed=4)
    observation = Observation(joints=obs["joints"], joints_stamp=1.0, image=obs["image"], image_stamp=1.0)
    plain = ControlLoop(ModelStore(reward_free_store, required=True), ControlConfig(planner=planner))
    assert plain.tick(1.0, observation).mode == "no_task"
    with_goal = ControlLoop(GoalStore(ModelStore(reward_free_store, required=True), goal),
                            ControlConfig(planner=planner, planning_budget_s=float("inf")))
    result = with_goal.tick(1.0, observation)
    assert result.mode == "plan", result.reason
    assert np.all(np.abs(result.action) <= 1.0) and np.all(np.isfinite(result.command))


@pytest.mark.ros
def test_controller_node_plans_toward_a_goal_image_parameter(reward_free_store, reacher_env, tmp_path):
    """A real controller node process over DDS: with a reward-free model it sends the safe command
    (mode no_task); given goal_image it plans."""
    from mbrl_ros.runtime.goal_task import save_goal_frame
    from tests.limits_helpers import limit_args
    from tests.ros_helpers import ROOT, Robot, node_process, ros_node, spin_until, stop

    (goal,) = _frames(reacher_env, [5])
    save_goal_frame(tmp_path / "goal.npz", goal)
    small_cem = """planner_config:='{"num_samples": 64, "num_elites": 8, "iterations": 2}'"""
    for goal_args, mode in (([], "no_task"), (["-p", f"goal_image:={tmp_path / 'goal.npz'}"], "plan")):
        log = tmp_path / f"controller_{mode}.log"
        proc = node_process("mbrl_ros.nodes.controller_node", "-p", f"model_store:={reward_free_store}",
                            "-p", "use_sim_time:=false", *limit_args(reacher_env.unwrapped.action_spec),
                            "-p", small_cem, *goal_args, params_file=ROOT / "config" / "ros" / "sim.yaml",
                            log_path=log)
        try:
            with ros_node() as node:
                robot = Robot(node, reacher_env)
                assert spin_until(node, lambda: robot.pub_js.get_subscription_count() > 0, 30, [proc]), log.read_text()
                robot.run(2.0)
                assert spin_until(node, lambda: robot.diag().get("mode") == mode, 10, [proc]), robot.diag()
                recent = [c for _, c in robot.commands[-10:]]
                assert recent
                if mode == "no_task":
                    assert all(np.allclose(c, 0.0) for c in recent)
                else:
                    assert any(np.abs(c).max() > 1e-6 for c in recent)
        finally:
            assert stop(proc) == 0, log.read_text()[-3000:]
