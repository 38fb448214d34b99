"""The MCTS pieces against known answers: the vectorised tree (grouping, selection, backup,
re-rooting), the refitted final action, the bimodal fallback, batched expansion, and the decision
tasks where it must do at least as well as CEM. Analytic models, fixed seeds, no learning."""
import time

import numpy as np
import pytest

from mbrl_ros.runtime.latent import LatentState
from mbrl_ros.runtime.planners import MCTSConfig, make_planner
from mbrl_ros.runtime.planners.mcts_decision import DECISION_TASKS, WallModel, run_decision_episode
from mbrl_ros.runtime.planners.mcts_tree import OK, Tree, group_ranks, widening
from mbrl_ros.runtime.planners.testing import DoubleIntegratorModel, _AnalyticModel, state_of


class BanditModel(_AnalyticModel):
    """One-step reward f(a); the state never changes (so depth 1 is a continuous bandit)."""

    def __init__(self, f):
        self.f = f

    def step(self, state, action):
        reward = self.f(np.asarray(action, np.float64)[:, 0]).astype(np.float32)
        return LatentState(state.h.copy(), state.z), reward, np.zeros_like(reward)


class CountingModel:
    """Counts model calls and their batch sizes."""

    def __init__(self, inner):
        self.inner, self.action_dim, self.has_value = inner, inner.action_dim, inner.has_value
        self.steps, self.imagines = [], []

    def step(self, state, action):
        self.steps.append(len(action))
        return self.inner.step(state, action)

    def imagine(self, state, actions):
        self.imagines.append(actions.shape[:2])
        return self.inner.imagine(state, actions)


# -- tree arrays ------------------------------------------------------------------------------

def test_group_ranks_matches_unique():
    values = np.array([5, 2, 5, 7, 2, 5])
    uniq, inv, counts, rank = group_ranks(values)
    ref_uniq, ref_inv, ref_counts = np.unique(values, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(uniq, ref_uniq)
    np.testing.assert_array_equal(inv, ref_inv)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(rank, [0, 0, 1, 0, 1, 2])  # order of appearance within each group
    same = group_ranks(np.zeros(4, np.int64))
    np.testing.assert_array_equal(same[3], np.arange(4))
    assert same[2].tolist() == [4]


def tiny_tree():
    """root -> a (reward 1), b (reward 2); a -> c (reward 3). Leaf values 10 (a), 20 (b), 30 (c)."""
    t = Tree(capacity=4, width=3, action_dim=1)  # capacity 4 < 4 nodes + growth: exercises doubling
    t.set_root(np.zeros((1, 2), np.float32), np.zeros((1, 0), np.float32))
    a, b = t.new_nodes(np.array([0, 0]), np.array([[0.1], [0.2]], np.float32))
    (c,) = t.new_nodes(np.array([a]), np.array([[0.3]], np.float32))
    t.reward[[a, b, c]] = [1.0, 2.0, 3.0]
    t.leaf_value[[a, b, c]] = [10.0, 20.0, 30.0]
    t.status[[a, b, c]] = OK
    return t, a, b, c


def test_new_nodes_fill_slots_in_order():
    t, a, b, c = tiny_tree()
    assert t.root_children().tolist() == [a, b] and t.children[a, 0] == c
    assert t.depth[[0, a, b, c]].tolist() == [0, 1, 1, 2] and t.parent[c] == a
    (d, e) = t.new_nodes(np.array([b, b]), np.zeros((2, 1), np.float32))
    assert t.children[b, :2].tolist() == [d, e] and t.n_children[b] == 2
    assert t.capacity >= 6


def test_backup_discounted_returns_known_answer():
    t, a, b, c = tiny_tree()
    paths = np.array([[0, a, c], [0, b, -1]])
    t.backup(paths, np.array([2, 1]), discount=0.5)
    # path 1: edge c = 3 + 0.5 * 30 = 18, edge a = 1 + 0.5 * 18 = 10; path 2: edge b = 2 + 0.5 * 20 = 12
    assert t.value_sum[c] == 18.0 and t.value_sum[a] == 10.0 and t.value_sum[b] == 12.0
    assert t.visits[[0, a, b, c]].tolist() == [2, 1, 1, 1]
    t.backup(np.array([[0, a, -1]]), np.array([1]), discount=0.5)  # a as a leaf: 1 + 0.5 * 10 = 6
    assert t.visits[a] == 2 and t.q(np.array([a]))[0] == 8.0 and t.value_max[a] == 10.0


def test_select_spreads_paths_and_widens_progressively():
    t, a, b, c = tiny_tree()
    t.backup(np.array([[0, a, c], [0, b, -1]]), np.array([2, 1]), discount=0.5)
    allowed = widening(1.0, 0.5, max_children=3)
    paths, level, is_new, slot = t.select(2, max_depth=3, allowed_children=allowed, exploration=0.0)
    # root: 2 visits + 2 paths -> ceil(sqrt(4)) = 2 children allowed, both exist: the two paths
    # take the two children (best Q first: b), and go on below them
    assert sorted(paths[:, 1].tolist()) == sorted([a, b])
    # below b (no children): a new child in slot 0; below a (child c exists, 1 visit + 1 path):
    # ceil(sqrt(2)) = 2 allowed -> a new child in slot 1
    new_b = (paths[:, 1] == b)
    assert is_new[new_b].all() and slot[new_b].tolist() == [0] and level[new_b].tolist() == [2]
    assert is_new[~new_b].all() and slot[~new_b].tolist() == [1]


def test_reroot_keeps_the_subtree_compacted():
    t, a, b, c = tiny_tree()
    t.backup(np.array([[0, a, c], [0, b, -1]]), np.array([2, 1]), discount=0.5)
    t.reroot(a)
    assert t.size == 2 and t.parent[0] == -1 and t.root_children().tolist() == [1]
    assert t.depth[:2].tolist() == [0, 1] and t.value_sum[1] == 18.0 and t.action[1, 0] == np.float32(0.3)


# -- the planner's answer ----------------------------------------------------------------------

def test_refit_answer_matches_lqr_at_cem_tolerance():
    """One default tick (CEM proposal, 128 simulations) at depth 5 on the LQR problem of
    test_planners.py: the refitted answer is within CEM's tolerance (0.05, 2.5 % of the range),
    and closer on average than the most-visited child (the old answer)."""
    model = DoubleIntegratorModel(dt=0.2, c=0.1, r=0.05)
    s0 = [0.25, -0.1]
    u_lqr = model.lqr_first_action(s0, 5, 0.95)
    errors = {}
    for selection in ("refit", "visits"):
        config = {"depth": 5, "discount": 0.95, "action_selection": selection}
        errors[selection] = [abs(make_planner("mcts", model, config, seed=seed).plan(state_of(s0)).action[0] - u_lqr)
                             for seed in range(3)]
    assert max(errors["refit"]) < 0.05, errors
    assert np.mean(errors["refit"]) < np.mean(errors["visits"]), errors


def test_refit_falls_back_on_a_mode_when_the_average_is_bad():
    """Two equal peaks at +-0.6: the average of the good children (near 0) scores badly, so the
    planner returns a child at one of the peaks instead of the middle."""
    model = BanditModel(lambda a: -np.minimum((a - 0.6) ** 2, (a + 0.6) ** 2) * 10)
    for seed in range(3):
        cfg = {"depth": 1, "proposal": "warm", "simulations": 64, "selection_temperature": 10.0}
        action = make_planner("mcts", model, cfg, seed=seed).plan(state_of([0.0])).action[0]
        assert 0.45 < abs(action) < 0.75, (seed, action)


def test_one_step_and_one_imagine_call_per_round():
    """Batched expansion: each round expands all its leaves in one model.step and rolls them out
    in one model.imagine of the fused length; plus one of each for the refitted answer."""
    model = CountingModel(DoubleIntegratorModel(dt=0.2, c=0.1, r=0.05))
    model.fused_horizon = 6
    planner = make_planner("mcts", model, {"simulations": 128, "leaves_per_round": 64}, seed=0)
    result = planner.plan(state_of([0.25, -0.1]))
    rounds = result.info["iterations"]
    assert planner.depth == 6  # depth follows the model's fused horizon by default
    assert len(model.steps) in (rounds, rounds + 1)
    cem_calls = planner.config.cem_iterations
    assert len(model.imagines) == cem_calls + len(model.steps)
    assert all(shape[1] == 6 for shape in model.imagines)  # rollouts padded to the fused length
    assert max(model.steps) >= 32  # large batches, not one leaf per call
    assert result.info["root_visits"] >= planner.config.simulations
    assert 0.0 <= result.info["tree_s"] < result.info["plan_time_s"]


def test_subtree_reuse_after_the_refitted_answer():
    planner = make_planner("mcts", DoubleIntegratorModel(dt=0.2, c=0.1, r=0.05), {"depth": 5, "reuse_tree": True},
                           seed=0)
    result = planner.plan(state_of([0.25, -0.1]))
    tree = planner.tree
    kids = tree.root_children()
    chosen = kids[np.argmin(np.abs(tree.action[kids, 0] - result.action[0]))]
    assert abs(tree.action[chosen, 0] - result.action[0]) < 1e-6  # the answer is a node of the tree
    visits = int(tree.visits[chosen])
    planner.advance(result.action)
    assert tree.size >= 1 and tree.visits[0] == visits
    planner.plan(state_of([0.2, -0.1]))
    planner.advance(np.array([0.987], np.float32))  # an action the tree never tried: fresh tree
    assert tree.size == 0


def test_default_rebuilds_the_tree_every_tick():
    # A reused subtree is stale (latents from the previous belief, values from the previous lines)
    # and cost a quarter of the cart-pole's return: by default every tick searches a fresh tree.
    planner = make_planner("mcts", DoubleIntegratorModel(dt=0.2, c=0.1, r=0.05), {"depth": 5}, seed=0)
    result = planner.plan(state_of([0.25, -0.1]))
    assert planner.tree.size > 1
    planner.advance(result.action)
    assert planner.tree.size == 0
    assert planner.plan(state_of([0.2, -0.1]), deadline=time.perf_counter() - 1.0).info["root_visits"] == 0


def test_config_checks():
    with pytest.raises(ValueError, match="action_selection"):
        MCTSConfig(action_selection="mean")
    with pytest.raises(ValueError, match="refit_on"):
        MCTSConfig(refit_on="median")
    with pytest.raises(ValueError, match="elite_children"):
        MCTSConfig(elite_children=-1)
    assert MCTSConfig().depth is None


# -- decision tasks: MCTS >= CEM ------------------------------------------------------------------

def mean_return(task_name, planner, seeds):
    task = DECISION_TASKS[task_name]
    return float(np.mean([run_decision_episode(task, planner, task.planner_config(planner), seed)
                          for seed in seeds]))


@pytest.mark.parametrize("task_name", ["trap", "wall"])
def test_mcts_at_least_as_good_as_cem_on_decision_tasks(task_name):
    seeds = list(range(10)) if task_name == "trap" else [0, 1, 2, 3]  # trap: small margins, more seeds
    mcts, cem = mean_return(task_name, "mcts", seeds), mean_return(task_name, "cem", seeds)
    assert mcts >= cem, (task_name, mcts, cem)
    if task_name == "trap":
        assert mcts > 0.1  # never trapped (a trapped episode scores below 0)
    else:
        assert mcts > 0.0  # went round the wall every time (stuck at it: about -10)


def test_wall_blocks_the_direct_line():
    model = WallModel()
    state = LatentState(np.array([[0.45, 0.0]], np.float32), np.zeros((1, 0), np.float32))
    nxt, _, _ = model.step(state, np.array([[1.0, 0.0]], np.float32))
    assert nxt.h[0, 0] < model.wall_x  # stopped at the face
    nxt, _, _ = model.step(LatentState(np.array([[0.45, 0.3]], np.float32), state.z), np.array([[1.0, 0.0]]))
    assert nxt.h[0, 0] > model.wall_x  # above the wall: free


def test_deadline_inside_the_cem_proposal_returns_its_plan():
    """A deadline that passes during the CEM pre-pass: no tree round, the (partly) refined
    proposal's first action, flagged as deadline_hit."""
    import time

    class Slow(DoubleIntegratorModel):
        def imagine(self, state, actions):
            time.sleep(0.02)
            return super().imagine(state, actions)

    planner = make_planner("mcts", Slow(dt=0.2, c=0.1, r=0.05), {"depth": 5}, seed=0)
    result = planner.plan(state_of([0.25, -0.1]), deadline=time.perf_counter() + 0.01)
    assert result.info["iterations"] == 0 and result.info["deadline_hit"]
    assert result.info["transitions"] > 0 and result.info["fallback"] is None
    np.testing.assert_allclose(result.action, planner.warm[0])
    assert -1.0 <= result.action[0] <= 1.0
