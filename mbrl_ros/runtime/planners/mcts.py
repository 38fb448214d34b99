"""Monte-Carlo tree search over continuous actions (Sampled-MuZero style), expanded in batches.

Each tick:
1. Proposal: a Gaussian per depth, mean/std [depth, A]. proposal="cem" (default) refines the
   warm-start plan (last tick's line, shifted) with `cem_iterations` CEM refits first, and
   uses the refitted mean/std; "warm" uses the warm-start plan with a fixed `proposal_std`.
2. Search, in rounds of `leaves_per_round` paths walked down the tree together
   (mcts_tree.Tree.select): children are actions sampled from the proposal at their depth
   (a node's first child is the proposal mean), added by progressive widening; the
   existing children are ranked by UCT on Q normalised among siblings. All new leaves of
   a round are expanded by ONE `model.step` call and rolled out along the proposal mean
   down to `depth` by ONE `model.imagine` call (padded to the model's fused horizon when
   that fits, so ONNX bundles use their fused graph), then bootstrapped with the model's
   value when `use_value` and the model has one.
3. Final action (action_selection="refit"): the visit- and Q-weighted mean of the root
   children's actions (a refitted Gaussian mean, as smooth as CEM's), evaluated as one more
   root child; if that average scores clearly worse than the most-visited child's line (two
   modes averaged into a bad middle) the most-visited child is returned instead.
4. With reuse_tree (off by default: a stale tree, see MCTSConfig), the subtree under the applied
   action becomes the next tick's tree.

All tree bookkeeping is numpy over flat arrays (mcts_tree.py); its share of a tick is
reported as info["tree_s"] (wall clock) and info["tree_cpu_s"] (CPU time).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mbrl_ros.runtime.latent import LatentModel, LatentState
from mbrl_ros.runtime.planners.base import (
    BoundSpec, PlanResult, Planner, check_positive_int, check_range, past, sequence_returns,
)
from mbrl_ros.runtime.planners.mcts_tree import DEAD, OK, PENDING, Tree, widening
from mbrl_ros.runtime.planners.sampling import GaussianSequenceSampler

__all__ = ["MCTSConfig", "MCTSPlanner", "Tree", "OK", "PENDING", "DEAD"]

DEFAULT_DEPTH = 10  # depth when neither the config nor the model (fused_horizon) says


@dataclass
class MCTSConfig:
    """MCTS settings; defaults tuned on the camera reacher (docs/experiments/mcts_tuning.md).

    depth: steps of lookahead (tree levels, then rollout, to this depth). None: the model's
        `fused_horizon` (ONNX bundles), else 10, so the CEM proposal and the leaf rollouts
        run as fused graph calls.
    simulations: leaves evaluated per tick (fewer if the deadline passes).
    leaves_per_round: paths walked together per round; their new leaves are expanded by one
        batched model.step and one batched model.imagine.
    max_children, widening_k, widening_alpha: progressive widening, a node with
        N visits may have min(max_children, ceil(k * N^alpha)) children.
    exploration: UCT constant c on the sibling-normalised Q in [0, 1]: Q + c sqrt(ln N / n).
    proposal: "cem" (warm-start plan refined by CEM; children sampled from the refitted
        Gaussian) or "warm" (children sampled around the warm-start plan with proposal_std).
    cem_samples, cem_iterations: the CEM refinement's sequences per refit (counting the
        current mean) and refits (CEMPlanner's other defaults: top 1/8 refitted, momentum 0.1).
    elite_children: "cem": the best sequences of the last refit that become root children,
        each followed (children's proposal, rollouts) by its own sequence.
    proposal_std: "warm": the proposal's std; "cem": the floor of the refitted std. Fractions
        of each dimension's half range.
    proposal_std_scale: factor on the CEM-refitted std for sampling children (> 1 widens).
    refine_fraction, refine_std: share of new children (after the first) drawn around the
        best sibling so far instead of the proposal, and their std (fraction of half range).
    discount: per-step discount.
    use_value: bootstrap with the model's value (when model.has_value).
    rollout: score a leaf at depth d by following the proposal mean for the remaining
        depth - d steps (batched), then the value. False: leaf value only (0 without one).
    reuse_tree: keep the subtree under the applied action for the next tick. Off by default:
        the kept subtree is stale (its latents were predicted from the previous belief, before
        the new observation; its values came from rollouts along the previous tick's lines to
        a horizon one step shorter), and its visit counts and best returns outweigh the fresh
        search in the refitted answer: on the cart-pole's tuning episodes reuse cost about a
        quarter of the return (docs/experiments/mcts_tuning.md).
    reuse_tolerance: largest |applied - child action| (max over dims, normalised
        units) for the applied action to count as that child's action.
    action_selection: "refit" (visit/Q-weighted mean of the root children, checked
        against the most-visited child; smooth, the default), "visits" (most visited root
        child, ties by Q) or "q" (best mean Q among children visited >= 2 times).
    selection_temperature: "refit" weights are visits * exp((Q - Q_max) / (T * spread)), spread =
        Q_max - median Q of the root children: small T keeps only the best children.
    refit_on: "max" (each child's best backed-up return: on a deterministic model a value some
        path achieves) or "mean" (its mean Q, lowered by exploration below it).
    fallback_margin: "refit" returns the most-visited child instead when the averaged
        action's line scores below that child's line by more than this many spreads.
    initial_capacity: nodes preallocated (the arrays double when full).
    """

    depth: Optional[int] = None
    simulations: int = 48
    leaves_per_round: int = 48
    max_children: int = 16
    widening_k: float = 1.5
    widening_alpha: float = 0.5
    exploration: float = 0.5
    proposal: str = "cem"
    cem_samples: int = 96
    cem_iterations: int = 2
    elite_children: int = 8
    proposal_std: float = 0.5
    proposal_std_scale: float = 1.0
    refine_fraction: float = 0.0
    refine_std: float = 0.1
    discount: float = 0.99
    use_value: bool = True
    rollout: bool = True
    reuse_tree: bool = False
    reuse_tolerance: float = 1e-3
    action_selection: str = "refit"
    selection_temperature: float = 0.1
    refit_on: str = "max"
    fallback_margin: float = 1.0
    initial_capacity: int = 1024
    action_low: BoundSpec = -1.0
    action_high: BoundSpec = 1.0
    time_budget_s: Optional[float] = None

    def __post_init__(self):
        own = "MCTSConfig"
        if self.depth is not None:
            self.depth = check_positive_int(own, "depth", self.depth)
        self.simulations = check_positive_int(own, "simulations", self.simulations)
        self.leaves_per_round = check_positive_int(own, "leaves_per_round", self.leaves_per_round)
        self.max_children = check_positive_int(own, "max_children", self.max_children)
        self.widening_k = check_range(own, "widening_k", self.widening_k, 0.0, np.inf, low_open=True, high_open=True)
        self.widening_alpha = check_range(own, "widening_alpha", self.widening_alpha, 0.0, 1.0)
        self.exploration = check_range(own, "exploration", self.exploration, 0.0, np.inf, high_open=True)
        if self.proposal not in ("warm", "cem"):
            raise ValueError(f"{own}: proposal must be 'warm' or 'cem', got {self.proposal!r}")
        self.cem_samples = check_positive_int(own, "cem_samples", self.cem_samples, minimum=2)
        self.cem_iterations = check_positive_int(own, "cem_iterations", self.cem_iterations)
        self.elite_children = check_positive_int(own, "elite_children", self.elite_children, minimum=0)
        self.proposal_std = check_range(own, "proposal_std", self.proposal_std, 0.0, np.inf, high_open=True)
        self.proposal_std_scale = check_range(own, "proposal_std_scale", self.proposal_std_scale, 0.0, np.inf,
                                              low_open=True, high_open=True)
        self.refine_fraction = check_range(own, "refine_fraction", self.refine_fraction, 0.0, 1.0)
        self.refine_std = check_range(own, "refine_std", self.refine_std, 0.0, np.inf, high_open=True)
        self.discount = check_range(own, "discount", self.discount, 0.0, 1.0, low_open=True)
        self.reuse_tolerance = check_range(own, "reuse_tolerance", self.reuse_tolerance, 0.0, np.inf, high_open=True)
        if self.action_selection not in ("refit", "visits", "q"):
            raise ValueError(f"{own}: action_selection must be 'refit', 'visits' or 'q', got {self.action_selection!r}")
        if self.refit_on not in ("max", "mean"):
            raise ValueError(f"{own}: refit_on must be 'max' or 'mean', got {self.refit_on!r}")
        self.selection_temperature = check_range(own, "selection_temperature", self.selection_temperature, 0.0,
                                                 np.inf, low_open=True, high_open=True)
        self.fallback_margin = check_range(own, "fallback_margin", self.fallback_margin, 0.0, np.inf, high_open=True)
        self.initial_capacity = check_positive_int(own, "initial_capacity", self.initial_capacity, minimum=2)
        if self.time_budget_s is not None:
            self.time_budget_s = check_range(own, "time_budget_s", self.time_budget_s, 0.0, np.inf, high_open=True)


def q_spread(q: np.ndarray) -> float:
    """How far the best Q stands above the median one: the scale of Q differences that matter.
    Unlike the full range it ignores how bad the worst children are (a trap, a wall), so the
    weights still tell the good children apart."""
    spread = float(q.max() - np.median(q))
    return spread if spread > 0 else 1.0


class _TimedModel:
    """Counts the seconds spent inside the model (wall clock and this process's CPU time), so the
    tree's own share of a tick is known; CPU time because on a loaded machine the wall clock
    mostly measures waiting for a core."""

    def __init__(self, model):
        self.model, self.seconds, self.cpu_seconds = model, 0.0, 0.0

    def __getattr__(self, name):  # action_dim, has_value, fused_horizon, ...: the model's own
        return getattr(self.model, name)

    def step(self, state, actions):
        return self._timed(self.model.step, state, actions)

    def imagine(self, state, actions):
        return self._timed(self.model.imagine, state, actions)

    def _timed(self, call, state, actions):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return call(state, actions)
        finally:
            self.seconds += time.perf_counter() - t0
            self.cpu_seconds += time.process_time() - c0


class MCTSPlanner(Planner):
    """Batched Sampled-MuZero-style MCTS; see MCTSConfig and the module docstring."""

    name = "mcts"

    def __init__(self, model: LatentModel, config: Optional[MCTSConfig] = None, seed: Optional[int] = None):
        super().__init__(model, config or MCTSConfig(), seed)
        cfg = self.config
        fused = getattr(model, "fused_horizon", None)
        self.fused = int(fused) if isinstance(fused, (int, np.integer)) and fused > 0 else None
        self.depth = cfg.depth or self.fused or DEFAULT_DEPTH
        self.n_elites = cfg.elite_children if cfg.proposal == "cem" else 0
        # Room beyond max_children: the tick's anchors (proposal mean, elites) and the refitted answer.
        self.tree = Tree(cfg.initial_capacity, cfg.max_children + self.n_elites + 2, self.action_dim)
        self.allowed = widening(cfg.widening_k, cfg.widening_alpha, cfg.max_children)
        self.use_value = bool(cfg.use_value and model.has_value)
        self.timed = _TimedModel(model)
        self.refine_std = (cfg.refine_std * self.bounds.half_range).astype(np.float32)
        self.std_floor = (cfg.proposal_std * self.bounds.half_range).astype(np.float32)
        self.warm = np.tile(self.bounds.safe, (self.depth, 1))  # [depth, A] warm-start plan / proposal mean
        self.std = np.tile(self.std_floor, (self.depth, 1))  # [depth, A] proposal std
        # Plans the subtrees follow (children's proposal means, leaf rollouts): row 0 the proposal
        # mean, rows 1.. the CEM elites, each a root child's own line (two detours round an
        # obstacle stay two lines instead of averaging into the obstacle).
        self.lines = np.tile(self.bounds.safe, (1 + self.n_elites, self.depth, 1))
        self.n_lines = 1
        self.sampler = None
        if cfg.proposal == "cem":
            self.sampler = GaussianSequenceSampler(self.depth, self.bounds, init_std=0.5, min_std=0.05,
                                                   noise_beta=0.0, rng=self.rng)

    # -- plan cycle ----------------------------------------------------------------

    def _plan(self, state: LatentState, deadline: Optional[float]) -> PlanResult:
        cfg, t = self.config, self.tree
        start, cpu_start = time.perf_counter(), time.process_time()
        self.timed.seconds = self.timed.cpu_seconds = 0.0
        t.set_root(state.h, state.z)
        done = rounds = transitions = 0
        deadline_hit = False
        self.n_lines = 1
        if self.sampler is not None and not past(deadline):
            transitions += self._refine_proposal(state, deadline)
        elif self.sampler is None:
            self.std[:] = self.std_floor
        self.lines[0] = self.warm
        anchors = None if past(deadline) else self._anchor_root()
        while done < cfg.simulations:
            if past(deadline):
                deadline_hit = True
                break
            batch = min(cfg.leaves_per_round, cfg.simulations - done)
            paths, level, is_new, slot = t.select(batch, self.depth, self.allowed, cfg.exploration)
            if anchors is not None:  # the root's anchor children are evaluated in the first round
                rows = np.full((len(anchors), self.depth + 1), -1, np.int64)
                rows[:, 0], rows[:, 1] = 0, anchors
                paths = np.vstack([paths, rows])
                level = np.r_[level, np.ones(len(anchors), np.int64)]
                is_new = np.r_[is_new, np.zeros(len(anchors), bool)]
            if len(paths) == 0:
                break  # every reachable child is dead (model gave NaN): nothing left to search
            new_rows = np.flatnonzero(is_new)
            parents = paths[new_rows, level[new_rows] - 1]
            ids = t.new_nodes(parents, self._propose(parents, slot[new_rows]), slot[new_rows])
            paths[new_rows, level[new_rows]] = ids
            if anchors is not None:
                ids, anchors = np.r_[ids, anchors], None
            if ids.size:
                transitions += self._expand(ids)
            t.backup(paths, level, cfg.discount)
            done += len(paths)
            rounds += 1
        result = self._result(rounds, transitions, deadline_hit)
        result.info["model_s"] = self.timed.seconds
        result.info["tree_s"] = time.perf_counter() - start - self.timed.seconds
        result.info["tree_cpu_s"] = time.process_time() - cpu_start - self.timed.cpu_seconds
        return result

    def _refine_proposal(self, state: LatentState, deadline: Optional[float]) -> int:
        """proposal="cem": CEM refits starting from the warm-start plan (as CEMPlanner does: the
        current mean plus samples, one batched imagine per refit, top 1/8 refitted). The refitted
        mean/std become the proposal; the last refit's best `elite_children` sequences become
        lines of their own. Returns transitions used."""
        cfg, sampler = self.config, self.sampler
        sampler.reset()
        sampler.mean[:] = self.warm
        n_elite = max(2, cfg.cem_samples // 8)
        transitions = 0
        for _ in range(cfg.cem_iterations):
            if past(deadline):
                break
            candidates = np.concatenate([sampler.mean[None], sampler.sample(cfg.cem_samples - 1)])
            rewards, values = self.timed.imagine(state, candidates)
            returns = sequence_returns(rewards, values, cfg.discount, self.use_value)
            transitions += candidates.shape[0] * self.depth
            order = np.argsort(-returns, kind="stable")[:n_elite]
            order = order[np.isfinite(returns[order])]
            if len(order) == 0:
                continue
            elites = candidates[order]
            sampler.update(elites.mean(axis=0), elites.std(axis=0), 0.1)
            k = min(self.n_elites, len(order))
            self.lines[1: 1 + k] = elites[:k]
            self.n_lines = 1 + k
        if transitions:
            self.warm[:] = sampler.mean
            self.std[:] = np.maximum(sampler.std * cfg.proposal_std_scale, 0.1 * self.std_floor)
        return transitions

    def _anchor_root(self) -> Optional[np.ndarray]:
        """Root children at the first action of each line (proposal mean, elites), unless one is
        there already; expanded with the first round, so the search always scores the CEM plan
        and its best samples, each followed by its own line."""
        t = self.tree
        t.line[0] = 0
        kids = t.root_children()
        firsts = self.bounds.clip(self.lines[: self.n_lines, 0])
        fresh = np.ones(self.n_lines, bool)
        if kids.size:
            gap = np.abs(t.action[kids][None] - firsts[:, None]).max(axis=2)  # [lines, kids]
            fresh = gap.min(axis=1) > self.config.reuse_tolerance
        room = t.width - 1 - int(t.n_children[0])  # the last slot stays free for the refitted answer
        lines = np.flatnonzero(fresh)[: max(room, 0)]
        if lines.size == 0:
            return None
        return t.new_nodes(np.zeros(len(lines), np.int64), firsts[lines], lines=lines)

    def _propose(self, parents: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Actions for new children of `parents`: a node's first child is its line's action at
        its depth, the others are sampled from the proposal around it (or around the best sibling)."""
        t, n = self.tree, len(parents)
        if n == 0:
            return np.zeros((0, self.action_dim), np.float32)
        depth = np.minimum(t.depth[parents], self.depth - 1)
        mean, std = self.lines[t.line[parents], depth], self.std[depth]
        if self.config.refine_fraction > 0:
            refine = self.rng.random(n) < self.config.refine_fraction
            for i in np.flatnonzero(refine):  # rare and few: a Python loop is fine here
                kids = t.usable_children(int(parents[i]))
                if kids.size:
                    mean[i] = t.action[kids[np.argmax(t.q(kids))]]
                    std[i] = self.refine_std
        noise = self.rng.standard_normal((n, self.action_dim)).astype(np.float32)
        actions = self.bounds.clip(mean + std * noise)
        first = slots == 0  # a node's first child is its line's own action
        actions[first] = self.bounds.clip(self.lines[t.line[parents[first]], depth[first]])
        return actions.astype(np.float32)

    # -- evaluation ------------------------------------------------------------------

    def _expand(self, leaves: np.ndarray) -> int:
        """Run model.step for new leaves (one batch) and score them; returns transitions used."""
        t, cfg = self.tree, self.config
        parents = t.parent[leaves]
        nxt, reward, value = self.timed.step(LatentState(t.h[parents], t.z[parents]), t.action[leaves])
        t.h[leaves], t.z[leaves] = nxt.h, nxt.z
        t.reward[leaves] = reward
        transitions = len(leaves)
        if cfg.rollout:
            values, steps = self._rollout(nxt, value, t.depth[leaves], t.line[leaves])
            t.leaf_value[leaves] = values
            transitions += steps
        else:
            t.leaf_value[leaves] = value if self.use_value else 0.0
        good = np.isfinite(t.reward[leaves]) & np.isfinite(t.leaf_value[leaves])
        t.status[leaves] = np.where(good, OK, DEAD)
        return transitions

    def _rollout(self, states: LatentState, value: np.ndarray, depths: np.ndarray,
                 lines: np.ndarray) -> tuple[np.ndarray, int]:
        """Leaf values: follow each leaf's line from its depth down to `depth`, then the value.

        Leaves differ in depth; all are rolled for the longest remaining length (the model's
        fused horizon when that covers it: one fused call beats several step calls) in one
        imagine() call and each one's return is cut at its own length.
        """
        cfg = self.config
        boot = np.asarray(value, np.float64) if self.use_value else np.zeros(len(depths))
        remaining = self.depth - depths  # steps left after the leaf
        length = int(remaining.max())
        if length <= 0:
            return boot, 0
        if self.fused is not None and length < self.fused:
            length = self.fused
        steps = np.minimum(depths[:, None] + np.arange(length)[None], self.depth - 1)
        actions = self.lines[lines[:, None], steps]
        actions[np.arange(length)[None] >= remaining[:, None]] = self.bounds.safe  # padding, cut below
        rewards, values = self.timed.imagine(states, actions)
        rewards = np.asarray(rewards, np.float64)
        discounts = cfg.discount ** np.arange(length)
        inside = np.arange(length)[None] < remaining[:, None]
        returns = np.where(inside, rewards * discounts, 0.0).sum(axis=1)  # where(): NaN past the cut must not leak
        if self.use_value:
            last = np.maximum(remaining - 1, 0)
            tail = np.asarray(values, np.float64)[np.arange(len(depths)), last]
            returns += np.where(remaining > 0, cfg.discount ** remaining * tail, boot)
        return returns, len(depths) * length

    # -- the answer ----------------------------------------------------------------------

    def _most_visited(self, node: int) -> int:
        t = self.tree
        kids = t.usable_children(node)
        if kids.size == 0:
            return -1
        q = t.q(kids)
        if self.config.action_selection == "q" and (t.visits[kids] >= 2).any():
            return int(kids[np.argmax(np.where(t.visits[kids] >= 2, q, -np.inf))])
        # Most visits; np.lexsort sorts by its last key first, so ties go to higher Q.
        return int(kids[np.lexsort((q, t.visits[kids]))[-1]])

    def _refit(self, node: int) -> tuple[Optional[np.ndarray], int]:
        """(visit- and Q-weighted mean action of `node`'s children, the child of largest weight);
        (None, -1) without usable children."""
        t = self.tree
        kids = t.usable_children(node)
        if kids.size == 0:
            return None, -1
        q = t.value_max[kids] if self.config.refit_on == "max" else t.q(kids)
        w = t.visits[kids] * np.exp((q - q.max()) / (self.config.selection_temperature * q_spread(q)))
        mean = self.bounds.clip((w[:, None] * t.action[kids]).sum(axis=0) / w.sum()).astype(np.float32)
        return mean, int(kids[np.argmax(w)])

    def _edge_value(self, node: int) -> float:
        """The node's own line: its reward plus its rollout (the proposal line) from there."""
        t = self.tree
        return float(t.reward[node] + self.config.discount * t.leaf_value[node])

    def _choose_root_child(self) -> tuple[int, int]:
        """(chosen root child, transitions used). "refit": the weighted mean, added and scored as a
        root child (kept if its line is not clearly worse than the most visited child's)."""
        t = self.tree
        best = self._most_visited(0)
        if best < 0 or self.config.action_selection != "refit":
            return best, 0
        mean, heaviest = self._refit(0)
        kids = t.usable_children(0)
        gap = np.abs(t.action[kids] - mean).max(axis=1)
        if gap.min() <= self.config.reuse_tolerance:
            return int(kids[np.argmin(gap)]), 0  # the mean is (nearly) a child already
        if t.n_children[0] >= t.width:
            return best, 0
        # The averaged action continues along the line of the child that weighs most in it.
        node = int(t.new_nodes(np.array([0]), mean[None], lines=t.line[[heaviest]])[0])
        used = self._expand(np.array([node]))
        if t.status[node] != OK:
            return best, used
        margin = self.config.fallback_margin * q_spread(t.q(kids))
        if self._edge_value(node) < self._edge_value(best) - margin:
            return best, used
        # The refitted child joins the root's statistics with its own line's return, so a reused
        # tree knows it (one visit).
        ret = self._edge_value(node)
        t.value_sum[node] += ret
        t.value_max[node] = max(t.value_max[node], ret)
        t.visits[node] += 1
        t.visits[0] += 1
        return node, used

    def _result(self, rounds: int, transitions: int, deadline_hit: bool) -> PlanResult:
        t = self.tree
        info = dict(iterations=rounds, deadline_hit=deadline_hit)
        chosen, used = self._choose_root_child() if rounds else (-1, 0)
        info.update(transitions=transitions + used, root_visits=int(t.visits[0]), tree_size=int(t.size))
        if chosen < 0:
            if rounds == 0:  # no time to search at all: fall back on the warm-start plan
                info.update(predicted_return=float("nan"), fallback=None)
                return PlanResult(self.bounds.clip(self.warm[0]).copy(), info)
            return self._safe_result("every expanded child had NaN/inf reward or value", **info)
        # The new warm start: the chosen action, then the refitted actions below it as far as the
        # tree reaches, the chosen child's line beyond.
        self.warm[:] = self.lines[t.line[chosen]]
        self.warm[0] = t.action[chosen]
        node, depth = chosen, 1
        while depth < self.depth:
            refit, _ = self._refit(node)
            if refit is None:
                break
            self.warm[depth] = refit
            node, depth = self._most_visited(node), depth + 1
        info.update(predicted_return=float(t.q(np.array([chosen]))[0]), fallback=None)
        return PlanResult(self.bounds.clip(t.action[chosen]).copy(), info)

    def _advance(self, applied_action: Optional[np.ndarray]) -> None:
        self.warm[:-1] = self.warm[1:]
        self.warm[-1] = self.bounds.safe
        t = self.tree
        if not self.config.reuse_tree or t.size == 0 or applied_action is None:
            t.clear()
            return
        kids = t.root_children()
        kids = kids[t.status[kids] == OK]
        if kids.size:
            gap = np.abs(t.action[kids] - applied_action).max(axis=1)
            if gap.min() <= self.config.reuse_tolerance:
                t.reroot(int(kids[np.argmin(gap)]))
                return
        t.clear()  # the robot did something the tree never considered

    def _reset(self) -> None:
        self.tree.clear()
        self.warm[:] = self.bounds.safe
        self.std[:] = self.std_floor
