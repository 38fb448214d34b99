"""Monte-Carlo tree search over continuous actions, expanded in batches.

- Children of a node are actions drawn from a proposal: a Gaussian around the
  warm-start plan at that depth (the first child is the warm-start action
  itself), added by progressive widening: a node visited N times may have
  ceil(widening_k * N^widening_alpha) children, at most max_children.
- Selection: UCT on Q values min-max normalised among siblings (scale-free, and
  sharper than MuZero's tree-wide range because deeper nodes' Q values live on a
  different scale from the root's children), with virtual loss so one round can descend `leaves_per_round` different paths;
  all leaves of a round are expanded by ONE `model.step` call.
- Leaf value: (rollout=True, default) follow the warm-start plan from the leaf
  down to `depth` in one batched `model.imagine` call, then bootstrap with the
  model's value; so every leaf is scored on a `depth`-step objective like
  CEM/MPPI's over their horizon. rollout=False: the model's value at the leaf
  (0 without one).
- The tree lives in preallocated numpy arrays (grown by doubling). After the
  step, the subtree under the applied action becomes the new tree (re-rooting).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mbrl_ros.runtime.latent import LatentModel, LatentState
from mbrl_ros.runtime.planners.base import (
    BoundSpec, PlanResult, Planner, check_positive_int, check_range, past,
)

OK, PENDING, DEAD = 0, 1, 2  # node status: usable / reserved this round / model gave NaN


@dataclass
class MCTSConfig:
    """MCTS settings (defaults sized for ~20 ms/tick; see docs/planners.md).

    depth: maximum tree depth (steps of lookahead before the leaf value). Not tied to
        the bundle's fused horizon: leaf rollouts differ in length and run step by step.
    simulations: leaves evaluated per tick (fewer if the deadline passes).
    leaves_per_round: leaves collected (virtual loss) per batched model.step call.
    max_children, widening_k, widening_alpha: progressive widening, a node with
        N visits may have min(max_children, ceil(k * N^alpha)) children.
    exploration: UCT constant c on the sibling-normalised Q in [0, 1]: Q + c sqrt(ln N / n).
    proposal_std: std of the child-action proposal around the warm-start plan,
        as a fraction of each dimension's half range.
    refine_fraction, refine_std: share of new children (after the first) drawn
        around the best sibling so far instead of the warm start, and their std
        (fraction of half range): local refinement, so the root's action gets
        finer than the proposal_std spacing.
    discount: per-step discount.
    use_value: bootstrap with the model's value (when model.has_value).
    rollout: score a leaf at depth d by following the warm-start plan for the
        remaining depth - d steps (batched), then the value; costs up to
        leaves x depth transitions per round. False: leaf value only.
    reuse_tree: keep the subtree under the applied action for the next tick.
    reuse_tolerance: largest |applied - child action| (max over dims, normalised
        units) for the applied action to count as that child's action.
    action_selection: "visits" (most visited root child, ties by Q: robust, the
        default) or "q" (best mean Q among children visited >= 2 times).
    initial_capacity: nodes preallocated (the arrays double when full).
    proposal: where the warm-start plan (children's proposal and rollout line) comes
        from each tick: "warm" = the previous tick's best line, shifted; "cem" = that,
        refined first by `cem_iterations` CEM refits of `cem_samples` sequences. With
        few simulations a tree over several action dimensions is only 2-3 levels deep,
        so on tasks where the whole action sequence must move together (the camera
        reacher's swing) the tree alone barely improves on its warm start; the CEM
        proposal gives it a good line to branch around (docs/planners.md).
    """

    depth: int = 8
    simulations: int = 128
    leaves_per_round: int = 32
    max_children: int = 16
    widening_k: float = 1.5
    widening_alpha: float = 0.5
    exploration: float = 0.5
    proposal_std: float = 0.5
    refine_fraction: float = 0.5
    refine_std: float = 0.1
    discount: float = 0.99
    use_value: bool = True
    rollout: bool = True
    reuse_tree: bool = True
    reuse_tolerance: float = 1e-3
    action_selection: str = "visits"
    initial_capacity: int = 2048
    proposal: str = "warm"
    cem_samples: int = 64
    cem_iterations: int = 1
    action_low: BoundSpec = -1.0
    action_high: BoundSpec = 1.0
    time_budget_s: Optional[float] = None

    def __post_init__(self):
        own = "MCTSConfig"
        self.depth = check_positive_int(own, "depth", self.depth)
        self.simulations = check_positive_int(own, "simulations", self.simulations)
        self.leaves_per_round = check_positive_int(own, "leaves_per_round", self.leaves_per_round)
        self.max_children = check_positive_int(own, "max_children", self.max_children)
        self.widening_k = check_range(own, "widening_k", self.widening_k, 0.0, np.inf, low_open=True, high_open=True)
        self.widening_alpha = check_range(own, "widening_alpha", self.widening_alpha, 0.0, 1.0)
        self.exploration = check_range(own, "exploration", self.exploration, 0.0, np.inf, high_open=True)
        self.proposal_std = check_range(own, "proposal_std", self.proposal_std, 0.0, np.inf, high_open=True)
        self.refine_fraction = check_range(own, "refine_fraction", self.refine_fraction, 0.0, 1.0)
        self.refine_std = check_range(own, "refine_std", self.refine_std, 0.0, np.inf, high_open=True)
        self.discount = check_range(own, "discount", self.discount, 0.0, 1.0, low_open=True)
        self.reuse_tolerance = check_range(own, "reuse_tolerance", self.reuse_tolerance, 0.0, np.inf, high_open=True)
        self.initial_capacity = check_positive_int(own, "initial_capacity", self.initial_capacity, minimum=2)
        if self.proposal not in ("warm", "cem"):
            raise ValueError(f"MCTSConfig: proposal must be 'warm' or 'cem', got {self.proposal!r}")
        self.cem_samples = check_positive_int(own, "cem_samples", self.cem_samples, minimum=2)
        self.cem_iterations = check_positive_int(own, "cem_iterations", self.cem_iterations)
        if self.action_selection not in ("visits", "q"):
            raise ValueError(f"MCTSConfig: action_selection must be 'visits' or 'q', got {self.action_selection!r}")
        if self.time_budget_s is not None:
            self.time_budget_s = check_range(own, "time_budget_s", self.time_budget_s, 0.0, np.inf, high_open=True)


class Tree:
    """Node arrays. Node 0 is the root; a node's stats describe the edge into it:
    `reward` of that step, `visits` and `value_sum` of the returns backed up
    through it (so Q = value_sum / visits), `leaf_value` the estimate made when
    it was expanded."""

    def __init__(self, capacity: int, max_children: int, action_dim: int):
        self.capacity, self.max_children, self.action_dim = capacity, max_children, action_dim
        self.h: Optional[np.ndarray] = None  # latent arrays allocated on first use (sizes from the state)
        self.z: Optional[np.ndarray] = None
        self.parent = np.full(capacity, -1, np.int64)
        self.depth = np.zeros(capacity, np.int64)
        self.action = np.zeros((capacity, action_dim), np.float32)
        self.reward = np.zeros(capacity, np.float64)
        self.leaf_value = np.zeros(capacity, np.float64)
        self.visits = np.zeros(capacity, np.int64)
        self.vloss = np.zeros(capacity, np.int64)
        self.value_sum = np.zeros(capacity, np.float64)
        self.status = np.zeros(capacity, np.int8)
        self.children = np.full((capacity, max_children), -1, np.int64)
        self.n_children = np.zeros(capacity, np.int64)
        self.size = 0
        self.q_min, self.q_max = np.inf, -np.inf

    _PER_NODE = ("parent", "depth", "action", "reward", "leaf_value", "visits", "vloss", "value_sum", "status",
                 "children", "n_children", "h", "z")

    def clear(self) -> None:
        self.size = 0
        self.q_min, self.q_max = np.inf, -np.inf

    def set_root(self, state: LatentState) -> None:
        """Root = `state`; a fresh one-node tree unless a reused tree is in place."""
        if self.h is None or self.h.shape[1] != state.h.shape[1] or self.z.shape[1] != state.z.shape[1]:
            self.h = np.zeros((self.capacity, state.h.shape[1]), np.float32)
            self.z = np.zeros((self.capacity, state.z.shape[1]), np.float32)
            self.clear()
        if self.size == 0:
            self._init_node(0, parent=-1, depth=0)
            self.size = 1
        # On a reused tree the root's children were imagined from the predicted
        # state; we keep them (standard subtree reuse) and only refresh the root.
        self.h[0], self.z[0] = state.h[0], state.z[0]

    def _init_node(self, i: int, parent: int, depth: int) -> None:
        self.parent[i], self.depth[i] = parent, depth
        self.reward[i] = self.leaf_value[i] = self.value_sum[i] = 0.0
        self.visits[i] = self.vloss[i] = self.n_children[i] = 0
        self.status[i] = OK
        self.children[i] = -1

    def reserve(self, n: int) -> None:
        """Make room for n more nodes (doubling the arrays)."""
        need = self.size + n
        if need <= self.capacity:
            return
        new_cap = max(need, 2 * self.capacity)
        for name in self._PER_NODE:
            old = getattr(self, name)
            grown = np.zeros((new_cap,) + old.shape[1:], old.dtype)
            grown[: self.capacity] = old
            setattr(self, name, grown)
        self.children[self.capacity:] = -1
        self.capacity = new_cap

    def add_child(self, node: int, action: np.ndarray) -> int:
        child = self.size
        self.size += 1
        self._init_node(child, parent=node, depth=self.depth[node] + 1)
        self.action[child] = action
        self.status[child] = PENDING
        self.children[node, self.n_children[node]] = child
        self.n_children[node] += 1
        return child

    def reroot(self, new_root: int) -> None:
        """Keep only the subtree under `new_root`, compacted to the array front (BFS order)."""
        order, frontier = [np.array([new_root])], np.array([new_root])
        while frontier.size:
            kids = self.children[frontier].ravel()
            frontier = kids[kids >= 0]
            if frontier.size:
                order.append(frontier)
        order = np.concatenate(order)
        remap = np.full(self.capacity, -1, np.int64)
        remap[order] = np.arange(len(order))
        for name in self._PER_NODE:
            arr = getattr(self, name)
            arr[: len(order)] = arr[order]
        m = len(order)
        self.parent[:m] = np.where(self.parent[:m] >= 0, remap[self.parent[:m]], -1)
        self.parent[0] = -1
        kids = self.children[:m]
        kids[:] = np.where(kids >= 0, remap[np.maximum(kids, 0)], -1)
        self.depth[:m] -= self.depth[0]
        self.size = m
        q = self.value_sum[1:m][self.visits[1:m] > 0] / self.visits[1:m][self.visits[1:m] > 0]
        self.q_min, self.q_max = (float(q.min()), float(q.max())) if q.size else (np.inf, -np.inf)

    def root_children(self) -> np.ndarray:
        return self.children[0, : self.n_children[0]]


class MCTSPlanner(Planner):
    """Batched continuous-action MCTS; see MCTSConfig and the module docstring."""

    name = "mcts"

    def __init__(self, model: LatentModel, config: Optional[MCTSConfig] = None, seed: Optional[int] = None):
        super().__init__(model, config or MCTSConfig(), seed)
        cfg = self.config
        self.tree = Tree(cfg.initial_capacity, cfg.max_children, self.action_dim)
        self.use_value = bool(cfg.use_value and model.has_value)
        self.proposal_std = (cfg.proposal_std * self.bounds.half_range).astype(np.float32)
        self.refine_std = (cfg.refine_std * self.bounds.half_range).astype(np.float32)
        self.warm = np.tile(self.bounds.safe, (cfg.depth, 1))  # [depth, A] warm-start plan
        self._cem = None
        if cfg.proposal == "cem":
            from mbrl_ros.runtime.planners.cem import CEMConfig, CEMPlanner

            cem_config = CEMConfig(horizon=cfg.depth, num_samples=cfg.cem_samples,
                                   num_elites=max(2, cfg.cem_samples // 8), iterations=cfg.cem_iterations,
                                   discount=cfg.discount, use_value=cfg.use_value,
                                   action_low=cfg.action_low, action_high=cfg.action_high)
            self._cem = CEMPlanner(model, cem_config, seed=None if seed is None else seed + 1)
            self._cem.auto_advance = False  # its plan is re-seeded from self.warm every tick

    # -- selection -------------------------------------------------------------

    def _allowed_children(self, n_eff: int) -> int:
        cfg = self.config
        return min(cfg.max_children, math.ceil(cfg.widening_k * max(n_eff, 1) ** cfg.widening_alpha))

    def _propose(self, node: int, slot: int) -> np.ndarray:
        base = self.warm[self.tree.depth[node]]
        if slot == 0:
            return base  # always try the warm-start action first
        std = self.proposal_std
        if self.rng.random() < self.config.refine_fraction:
            t = self.tree
            kids = t.children[node, :slot]
            kids = kids[(t.status[kids] == OK) & (t.visits[kids] > 0)]
            if kids.size:
                base = t.action[kids[np.argmax(t.value_sum[kids] / t.visits[kids])]]
                std = self.refine_std
        noise = self.rng.standard_normal(self.action_dim).astype(np.float32)
        return self.bounds.clip(base + std * noise)

    def _descend(self) -> Optional[list]:
        """One root-to-leaf path (node indices) with virtual loss applied; None if stuck.

        The leaf is either a newly reserved child (to expand) or a node at max depth.
        """
        t, cfg = self.tree, self.config
        node, path = 0, [0]
        while t.depth[node] < cfg.depth:
            n_eff = int(t.visits[node] + t.vloss[node])
            nc = int(t.n_children[node])
            kids = t.children[node, :nc]
            usable = t.status[kids] == OK
            # Widen when the visit count allows it, or when every child is still
            # pending in this round (rather than giving up on the path).
            if nc < cfg.max_children and (nc < self._allowed_children(n_eff) or not usable.any()):
                path.append(t.add_child(node, self._propose(node, nc)))
                break
            if not usable.any():
                return None
            visits = t.visits[kids]
            n = np.maximum(visits + t.vloss[kids], 1)
            q = t.value_sum[kids] / np.maximum(visits, 1)
            q_lo, q_hi = q[usable].min(), q[usable].max()
            q = (q - q_lo) / (q_hi - q_lo) if q_hi > q_lo else np.full(nc, 0.5)
            q = q * visits / n  # virtual visits count as the worst sibling value
            score = q + cfg.exploration * np.sqrt(math.log(max(n_eff, 1)) / n)
            score[~usable] = -np.inf
            node = int(kids[int(np.argmax(score))])
            path.append(node)
        t.vloss[path] += 1
        return path

    # -- evaluation and backup --------------------------------------------------

    def _expand(self, leaves: np.ndarray) -> int:
        """Run model.step for new leaves (one batch); returns transitions used."""
        t, cfg = self.tree, self.config
        parents = t.parent[leaves]
        nxt, reward, value = self.model.step(LatentState(t.h[parents], t.z[parents]), t.action[leaves])
        t.h[leaves], t.z[leaves] = nxt.h, nxt.z
        t.reward[leaves] = reward
        transitions = len(leaves)
        if cfg.rollout:
            values, steps = self._rollout(nxt, value, t.depth[leaves])
            t.leaf_value[leaves] = values
            transitions += steps
        else:
            t.leaf_value[leaves] = value if self.use_value else 0.0
        good = np.isfinite(t.reward[leaves]) & np.isfinite(t.leaf_value[leaves])
        t.status[leaves] = np.where(good, OK, DEAD)
        return transitions

    def _rollout(self, states: LatentState, value: np.ndarray, depths: np.ndarray) -> tuple[np.ndarray, int]:
        """Leaf values: follow the warm-start plan from each leaf down to `depth`, then the value.

        Leaves differ in depth; all are rolled for the longest remaining length
        in one imagine() call and each one's return is cut at its own length.
        """
        cfg = self.config
        boot = np.asarray(value, np.float64) if self.use_value else np.zeros(len(depths))
        remaining = cfg.depth - depths  # steps left after the leaf
        length = int(remaining.max())
        if length <= 0:
            return boot, 0
        steps = np.minimum(depths[:, None] + np.arange(length)[None], cfg.depth - 1)
        rewards, values = self.model.imagine(states, self.warm[steps])
        rewards = np.asarray(rewards, np.float64)
        discounts = cfg.discount ** np.arange(length)
        inside = np.arange(length)[None] < remaining[:, None]
        returns = np.where(inside, rewards * discounts, 0.0).sum(axis=1)  # where(): NaN past the cut must not leak
        if self.use_value:
            last = np.maximum(remaining - 1, 0)
            tail = np.asarray(values, np.float64)[np.arange(len(depths)), last]
            returns += np.where(remaining > 0, cfg.discount ** remaining * tail, boot)
        return returns, len(depths) * length

    def _backup(self, paths: list) -> None:
        t, g = self.tree, self.config.discount
        nodes, returns = [], []
        for path in paths:
            leaf = path[-1]
            t.vloss[path] -= 1
            if t.status[leaf] == DEAD:
                continue
            ret = t.leaf_value[leaf]
            for node in reversed(path[1:]):
                ret = t.reward[node] + g * ret
                nodes.append(node)
                returns.append(ret)
            nodes.append(0)
            returns.append(np.nan)  # the root has no incoming edge; only its visit count matters
        if not nodes:
            return
        nodes, returns = np.asarray(nodes), np.asarray(returns)
        np.add.at(t.visits, nodes, 1)
        edge = nodes != 0
        np.add.at(t.value_sum, nodes[edge], returns[edge])
        q = t.value_sum[nodes[edge]] / t.visits[nodes[edge]]
        if q.size:
            t.q_min, t.q_max = min(t.q_min, float(q.min())), max(t.q_max, float(q.max()))

    # -- plan cycle ----------------------------------------------------------------

    def _plan(self, state: LatentState, deadline: Optional[float]) -> PlanResult:
        cfg, t = self.config, self.tree
        t.set_root(state)
        done = rounds = transitions = 0
        deadline_hit = False
        if self._cem is not None and not past(deadline):
            transitions += self._refine_warm_start(state, deadline)
        while done < cfg.simulations:
            if past(deadline):
                deadline_hit = True
                break
            batch = min(cfg.leaves_per_round, cfg.simulations - done)
            t.reserve(batch)
            paths = []
            for _ in range(batch):
                path = self._descend()
                if path is None:
                    break
                paths.append(path)
            if not paths:
                break  # every reachable child is dead (model gave NaN): nothing left to search
            new = np.array([p[-1] for p in paths if t.status[p[-1]] == PENDING], np.int64)
            if new.size:
                transitions += self._expand(new)
            self._backup(paths)
            done += len(paths)
            rounds += 1
        return self._result(rounds, transitions, deadline_hit)

    def _refine_warm_start(self, state: LatentState, deadline: Optional[float]) -> int:
        """proposal="cem": CEM refits starting from the warm-start plan; their mean becomes
        the plan the tree proposes around and rolls out with. Returns transitions used."""
        sampler = self._cem.sampler
        sampler.reset()
        sampler.mean[:] = self.warm
        result = self._cem.plan(state, deadline)
        if np.isfinite(result.info.get("predicted_return", np.nan)):
            self.warm[:] = sampler.mean
        return int(result.info.get("transitions", 0))

    def _best_child(self, node: int) -> int:
        t = self.tree
        kids = t.children[node, : t.n_children[node]]
        kids = kids[(t.status[kids] == OK) & (t.visits[kids] > 0)]
        if kids.size == 0:
            return -1
        q = t.value_sum[kids] / t.visits[kids]
        if self.config.action_selection == "q" and (t.visits[kids] >= 2).any():
            q = np.where(t.visits[kids] >= 2, q, -np.inf)
            return int(kids[np.argmax(q)])
        # Most visits; np.lexsort sorts by its last key first, so ties go to higher Q.
        return int(kids[np.lexsort((q, t.visits[kids]))[-1]])

    def _result(self, rounds: int, transitions: int, deadline_hit: bool) -> PlanResult:
        t = self.tree
        best = self._best_child(0)
        info = dict(iterations=rounds, transitions=transitions, deadline_hit=deadline_hit,
                    root_visits=int(t.visits[0]), tree_size=int(t.size))
        if best < 0:
            if rounds == 0:  # no time to search at all: fall back on the warm-start plan
                info.update(predicted_return=float("nan"), fallback=None)
                return PlanResult(self.bounds.clip(self.warm[0]).copy(), info)
            return self._safe_result("every expanded child had NaN/inf reward or value", **info)
        # The new warm start: the best line through the tree, old plan beyond it.
        node, depth = best, 0
        while node >= 0 and depth < len(self.warm):
            self.warm[depth] = t.action[node]
            node, depth = self._best_child(node), depth + 1
        info.update(predicted_return=float(t.value_sum[best] / t.visits[best]), fallback=None)
        return PlanResult(self.bounds.clip(t.action[best]).copy(), info)

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
