"""Planner correctness on analytic latent models (no learning, fixed seeds).

Ground truths: finite-horizon discounted LQR for the double integrator, a trap
that greedy choice falls into, and a goal only a value function can see.
"""
import time

import numpy as np
import pytest

from mbrl_ros.runtime.latent import LatentState
from mbrl_ros.runtime.planners import (
    CEMConfig, MCTSConfig, MPPIConfig, PlanResult, make_planner,
)
from mbrl_ros.runtime.planners.sampling import powerlaw_noise
from mbrl_ros.runtime.planners.testing import (
    DoubleIntegratorModel, GoalBeyondHorizonModel, NaNModel, RandomGRULatentModel, TrapModel, state_of,
)

PLANNERS = ["cem", "mppi", "mcts"]
LOOKAHEAD = {"cem": "horizon", "mppi": "horizon", "mcts": "depth"}  # each planner's name for its steps ahead


def ahead(name: str, steps: int, **more) -> dict:
    """A config for planner `name` looking `steps` ahead (CEM/MPPI horizon, MCTS depth)."""
    return {LOOKAHEAD[name]: steps, **more}
S0 = [0.25, -0.1]  # small enough that the LQR action (~ -0.35 .. -0.45) is far inside [-1, 1]
DI = dict(dt=0.2, c=0.1, r=0.05)
GAMMA = 0.95


def infinite_horizon_P(model, discount, iters=200):
    """A terminal value matrix: the (discounted) LQR cost-to-go after many steps."""
    P = np.zeros((2, 2))
    for _ in range(iters):
        K = np.linalg.solve(model.R + discount * model.B.T @ P @ model.B, discount * model.B.T @ P @ model.A)
        closed = model.A - model.B @ K
        P = model.Q + K.T @ model.R @ K + discount * closed.T @ P @ closed
    return P


def assert_valid(result: PlanResult, low=-1.0, high=1.0, dim=1):
    assert result.action.dtype == np.float32 and result.action.shape == (dim,)
    assert np.all(result.action >= low) and np.all(result.action <= high)
    for key in ("iterations", "transitions", "predicted_return", "deadline_hit", "fallback", "planner"):
        assert key in result.info


# -- (1) LQR ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cem", "mppi"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sequence_planners_match_lqr_first_action(name, seed):
    """Default config, H=10; repeated plan() calls for the same step (auto_advance off)
    refine the warm start. Tolerance 0.05 absolute = 2.5% of the action range."""
    model = DoubleIntegratorModel(**DI)
    planner = make_planner(name, model, {"horizon": 10, "discount": GAMMA}, seed=seed)
    planner.auto_advance = False
    for _ in range(9):  # 18 refits at the default 2 iterations per call
        result = planner.plan(state_of(S0))
    u_lqr = model.lqr_first_action(S0, 10, GAMMA)
    assert_valid(result)
    assert abs(result.action[0] - u_lqr) < 0.05, (result.action, u_lqr)


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_single_tick_lqr_with_terminal_value(name):
    """One plan() call, bigger search, terminal value -s'Ps bootstrapped with discount^H."""
    P = infinite_horizon_P(DoubleIntegratorModel(**DI), GAMMA)
    model = DoubleIntegratorModel(**DI, terminal_matrix=P)
    cfg = {"horizon": 5, "discount": GAMMA, "num_samples": 256, "iterations": 6}
    if name == "mppi":
        cfg["temperature"] = 0.1
    result = make_planner(name, model, cfg, seed=0).plan(state_of(S0))
    u_lqr = model.lqr_first_action(S0, 5, GAMMA, use_value=True)
    u_no_value = model.lqr_first_action(S0, 5, GAMMA, use_value=False)
    assert abs(u_lqr - u_no_value) > 0.05  # the value really changes the answer
    assert abs(result.action[0] - u_lqr) < 0.05, (result.action, u_lqr)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mcts_matches_lqr_first_action(seed):
    """MCTS picks among sampled actions, so its resolution is coarser:
    tolerance 0.2 absolute = 10% of the action range, H=5, 1024 simulations."""
    model = DoubleIntegratorModel(**DI)
    cfg = {"depth": 5, "discount": GAMMA, "simulations": 1024, "max_children": 32}
    result = make_planner("mcts", model, cfg, seed=seed).plan(state_of(S0))
    u_lqr = model.lqr_first_action(S0, 5, GAMMA)
    assert_valid(result)
    assert result.info["transitions"] >= 1024
    assert abs(result.action[0] - u_lqr) < 0.2, (result.action, u_lqr)


# -- (2) lookahead beats greedy ---------------------------------------------------------

@pytest.mark.parametrize("name", PLANNERS)
def test_lookahead_avoids_trap_that_greedy_takes(name):
    model = TrapModel(bonus=0.1, threshold=0.5, penalty=1.0)
    greedy = make_planner(name, model, ahead(name, 1), seed=0).plan(state_of([0.0]))
    lookahead = make_planner(name, model, ahead(name, 4), seed=0).plan(state_of([0.0]))
    assert greedy.action[0] > model.threshold      # one step: the bonus wins, trap sprung
    assert lookahead.action[0] <= model.threshold  # four steps: the penalty is seen
    assert lookahead.info["predicted_return"] > -0.5


@pytest.mark.parametrize("name", PLANNERS)
def test_value_bootstrap_sees_goal_beyond_horizon(name):
    model = GoalBeyondHorizonModel()  # goal 10 steps away, horizon 3
    with_value = make_planner(name, model, ahead(name, 3), seed=0).plan(state_of([0.0]))
    without = make_planner(name, model, ahead(name, 3, use_value=False), seed=0).plan(state_of([0.0]))
    assert with_value.action[0] > 0.5
    assert abs(without.action[0]) < 0.3


# -- warm start, deadline, tree reuse ------------------------------------------------------

@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_warm_start_shifts_by_one_step(name):
    planner = make_planner(name, DoubleIntegratorModel(**DI), {"horizon": 6}, seed=0)
    first = planner.plan(state_of(S0))
    plan_after = planner.sampler.mean.copy()
    # No advance() call: the next plan() advances by itself; with no time it
    # returns the warm start, i.e. the second step of the previous plan.
    second = planner.plan(state_of(S0), deadline=time.perf_counter() - 1.0)
    assert second.info["iterations"] == 0 and second.info["deadline_hit"]
    np.testing.assert_allclose(planner.sampler.mean[:-1], plan_after[1:])
    np.testing.assert_allclose(planner.sampler.mean[-1], 0.0)
    np.testing.assert_allclose(second.action, plan_after[1])
    assert not np.allclose(first.action, second.action)
    np.testing.assert_allclose(planner.sampler.std, np.broadcast_to(planner.sampler.init_std, planner.sampler.std.shape))


def test_explicit_advance_shifts_once():
    planner = make_planner("cem", DoubleIntegratorModel(**DI), {"horizon": 6}, seed=0)
    result = planner.plan(state_of(S0))
    plan_after = planner.sampler.mean.copy()
    planner.advance(result.action)
    planner.plan(state_of(S0), deadline=time.perf_counter() - 1.0)  # must not shift a second time
    np.testing.assert_allclose(planner.sampler.mean[:-1], plan_after[1:])


def test_mcts_warm_plan_shifts():
    planner = make_planner("mcts", DoubleIntegratorModel(**DI), {"depth": 5}, seed=0)
    planner.plan(state_of(S0))
    warm = planner.warm.copy()
    planner.advance()
    np.testing.assert_allclose(planner.warm[:-1], warm[1:])


class SlowModel:
    """Wraps a model and sleeps in every call, so a deadline cuts the search short."""

    def __init__(self, inner, delay_s):
        self.inner, self.delay_s = inner, delay_s
        self.action_dim, self.has_value = inner.action_dim, inner.has_value

    def step(self, state, action):
        time.sleep(self.delay_s)
        return self.inner.step(state, action)

    def imagine(self, state, actions):
        time.sleep(self.delay_s)
        return self.inner.imagine(state, actions)


@pytest.mark.parametrize("name", PLANNERS)
def test_deadline_stops_search(name):
    model = SlowModel(DoubleIntegratorModel(**DI), delay_s=0.005)
    big = {"cem": {"iterations": 50}, "mppi": {"iterations": 50},
           "mcts": {"simulations": 50 * 8, "leaves_per_round": 8, "rollout": False, "proposal": "warm"}}[name]
    planner = make_planner(name, model, big, seed=0)
    result = planner.plan(state_of(S0), deadline=time.perf_counter() + 0.02)
    assert_valid(result)
    assert result.info["deadline_hit"]
    assert 1 <= result.info["iterations"] < 50
    # A deadline already passed: no model call at all, still a valid action.
    late = make_planner(name, model, big, seed=0).plan(state_of(S0), deadline=time.perf_counter() - 1.0)
    assert_valid(late)
    assert late.info["iterations"] == 0 and late.info["transitions"] == 0 and late.info["deadline_hit"]


def test_time_budget_in_config_is_relative():
    model = SlowModel(DoubleIntegratorModel(**DI), delay_s=0.005)
    result = make_planner("cem", model, {"iterations": 50, "time_budget_s": 0.02}, seed=0).plan(state_of(S0))
    assert result.info["deadline_hit"] and 1 <= result.info["iterations"] < 50


def test_mcts_reuses_subtree_of_applied_action():
    # "visits": the answer is a searched child with a subtree ("refit" adds a fresh child; test_mcts.py)
    planner = make_planner("mcts", DoubleIntegratorModel(**DI),
                           {"depth": 5, "simulations": 512, "action_selection": "visits", "reuse_tree": True}, seed=0)
    result = planner.plan(state_of(S0))
    tree = planner.tree
    kids = tree.root_children()
    chosen = kids[np.argmin(np.abs(tree.action[kids, 0] - result.action[0]))]
    child_visits = int(tree.visits[chosen])
    grandchildren = tree.children[chosen, : tree.n_children[chosen]]
    grand_visits = sorted(tree.visits[grandchildren].tolist())
    assert child_visits > 1 and len(grand_visits) > 1

    planner.advance(result.action)
    assert tree.visits[0] == child_visits
    assert sorted(tree.visits[tree.root_children()].tolist()) == grand_visits
    assert np.all(tree.parent[1:tree.size] < np.arange(1, tree.size))  # compacted, parents first
    # With no time to search, the next plan starts from exactly the kept counts.
    nxt = planner.plan(state_of(S0), deadline=time.perf_counter() - 1.0)
    assert nxt.info["root_visits"] == child_visits

    # An applied action the tree never considered (a safety layer changed it): fresh tree.
    planner.advance(np.array([0.987654], np.float32))
    assert tree.size == 0
    assert planner.plan(state_of(S0), deadline=time.perf_counter() - 1.0).info["root_visits"] == 0


# -- bounds, configs, bad inputs ---------------------------------------------------------

@pytest.mark.parametrize("name", PLANNERS)
def test_per_dimension_bounds_respected(name):
    model = DoubleIntegratorModel(**DI)  # LQR wants about -0.44; the box allows -0.1 at most
    result = make_planner(name, model, {"action_low": [-0.1], "action_high": [0.3]}, seed=0).plan(state_of(S0))
    assert_valid(result, low=-0.1, high=0.3)
    assert result.action[0] < 0.0


@pytest.mark.parametrize("name", PLANNERS)
@pytest.mark.parametrize("bad", [
    {"action_low": 1.0, "action_high": 1.0},
    {"action_low": [0.5], "action_high": [-0.5]},
    {"action_low": [-1.0, -1.0]},
    {"action_low": float("nan")},
    {"lookahead": 0},
    {"discount": 0.0},
    {"no_such_option": 1},
])
def test_bad_config_raises_value_error(name, bad):
    if "lookahead" in bad:
        bad = ahead(name, bad["lookahead"])
    with pytest.raises(ValueError):
        make_planner(name, DoubleIntegratorModel(**DI), bad)


def test_lookahead_names_are_distinct():
    """CEM/MPPI look `horizon` steps ahead, MCTS `depth` levels: each refuses the other's name
    (a config written for one planner never silently runs the other at its default)."""
    with pytest.raises(ValueError, match=r"unknown config keys \['horizon'\].*'depth'"):
        make_planner("mcts", DoubleIntegratorModel(**DI), {"horizon": 5})
    for name in ("cem", "mppi"):
        with pytest.raises(ValueError, match=r"unknown config keys \['depth'\]"):
            make_planner(name, DoubleIntegratorModel(**DI), {"depth": 5})
    assert make_planner("mcts", DoubleIntegratorModel(**DI), {"depth": 3}).config.depth == 3


@pytest.mark.parametrize("cls,bad", [
    (CEMConfig, {"num_samples": 8, "num_elites": 16}),
    (CEMConfig, {"action_selection": "median"}),
    (MPPIConfig, {"temperature": 0.0}),
    (MPPIConfig, {"num_samples": 8, "num_elites": 9}),
    (MCTSConfig, {"simulations": 0}),
    (MCTSConfig, {"widening_alpha": 1.5}),
])
def test_bad_planner_specific_config(cls, bad):
    with pytest.raises(ValueError):
        cls(**bad)


def test_unknown_planner_name():
    with pytest.raises(ValueError, match="unknown planner"):
        make_planner("rrt", DoubleIntegratorModel())


@pytest.mark.parametrize("name", PLANNERS)
def test_bad_state_raises(name):
    planner = make_planner(name, DoubleIntegratorModel(**DI), seed=0)
    with pytest.raises(ValueError, match="NaN"):
        planner.plan(state_of([np.nan, 0.0]))
    with pytest.raises(ValueError, match="batch-1"):
        planner.plan(LatentState(np.zeros((2, 2), np.float32), np.zeros((2, 0), np.float32)))
    with pytest.raises(ValueError):
        planner.advance(np.array([np.nan], np.float32))


@pytest.mark.parametrize("name", PLANNERS)
def test_all_nan_model_returns_safe_action_flagged(name):
    model = NaNModel(DoubleIntegratorModel(**DI))
    result = make_planner(name, model, seed=0).plan(state_of(S0))
    assert_valid(result)
    np.testing.assert_array_equal(result.action, [0.0])
    assert result.info["fallback"] and result.info["iterations"] >= 1


@pytest.mark.parametrize("name", PLANNERS)
def test_nan_candidates_never_win(name):
    """NaN reward for any positive action: the planner that would go right (value
    points at the goal) must not pick a poisoned action."""
    model = NaNModel(GoalBeyondHorizonModel(), poison=lambda a: a[:, 0] > 0)
    result = make_planner(name, model, ahead(name, 3), seed=0).plan(state_of([0.0]))
    assert_valid(result)
    assert result.action[0] <= 0.0 and result.info["fallback"] is None


@pytest.mark.parametrize("name", PLANNERS)
def test_reset_forgets_warm_start(name):
    planner = make_planner(name, DoubleIntegratorModel(**DI), ahead(name, 5), seed=0)
    planner.plan(state_of(S0))
    planner.reset()
    result = planner.plan(state_of(S0), deadline=time.perf_counter() - 1.0)
    np.testing.assert_array_equal(result.action, [0.0])


# -- sampler / latent model plumbing ------------------------------------------------------

def test_colored_noise_unit_variance_and_correlated():
    rng = np.random.default_rng(0)
    white = powerlaw_noise(rng, 0.0, (4000, 16, 1))[:, :, 0]
    red = powerlaw_noise(rng, 2.0, (4000, 16, 1))[:, :, 0]
    assert abs(red.var() - 1.0) < 0.1 and abs(white.var() - 1.0) < 0.1

    def lag1(x):
        return np.mean(x[:, 1:] * x[:, :-1]) / np.mean(x * x)

    assert lag1(red) > 0.5 and abs(lag1(white)) < 0.05


def test_icem_options_still_solve_lqr():
    model = DoubleIntegratorModel(**DI)
    cfg = {"horizon": 5, "discount": GAMMA, "noise_beta": 2.0, "keep_elites_frac": 0.3,
           "num_samples": 256, "iterations": 6, "action_selection": "best"}
    planner = make_planner("cem", model, cfg, seed=0)
    result = planner.plan(state_of(S0))
    assert abs(result.action[0] - model.lqr_first_action(S0, 5, GAMMA)) < 0.1
    planner.advance()
    assert planner._kept is not None and np.all(planner._kept[:, -1] == 0.0)


@pytest.mark.parametrize("name", PLANNERS)
def test_runs_on_random_gru_latent_model(name):
    model = RandomGRULatentModel(action_dim=3, deter=32, stoch=8, hidden=32)
    planner = make_planner(name, model, ahead(name, 4), seed=0)
    for _ in range(3):
        result = planner.plan(model.initial_state())
        assert_valid(result, dim=3)
        assert np.isfinite(result.info["predicted_return"]) and result.info["transitions"] > 0


def test_mcts_cem_proposal_refines_the_warm_start():
    """proposal="cem": CEM refits move the warm-start line before the tree search, so a
    small tree (16 simulations, too few to find the answer itself) lands near LQR."""
    model = DoubleIntegratorModel(**DI)
    u_lqr = model.lqr_first_action(S0, 5, GAMMA)
    base = {"depth": 5, "discount": GAMMA, "simulations": 16, "leaves_per_round": 8}
    tree_only = make_planner("mcts", model, {**base, "proposal": "warm"}, seed=0).plan(state_of(S0))
    with_cem = make_planner("mcts", model, {**base, "proposal": "cem", "cem_samples": 128, "cem_iterations": 4},
                            seed=0).plan(state_of(S0))
    assert_valid(with_cem)
    assert abs(with_cem.action[0] - u_lqr) < 0.1, (with_cem.action, u_lqr)
    assert abs(with_cem.action[0] - u_lqr) < abs(tree_only.action[0] - u_lqr)
    assert with_cem.info["transitions"] > tree_only.info["transitions"]  # the CEM refits are counted
    with pytest.raises(ValueError, match="proposal"):
        make_planner("mcts", model, {"proposal": "random"})
