"""The MCTS tree as flat numpy arrays, with batched (vectorised) selection and backup.

No per-node Python objects: node i's statistics live at index i of each array,
and its children in row i of `children` (slot order = creation order). One
round of selection walks all of its paths down the tree together, one level
per numpy pass, so the Python work per round is O(depth), not O(paths x depth).
"""
from __future__ import annotations

import numpy as np

OK, PENDING, DEAD = 0, 1, 2  # node status: usable / created this round, not evaluated yet / model gave NaN


class Tree:
    """Preallocated node arrays (doubled when full); node 0 is the root."""

    _PER_NODE = ("parent", "depth", "action", "reward", "leaf_value", "visits", "value_sum", "value_max",
                 "status", "children", "n_children", "line", "h", "z")

    def __init__(self, capacity: int, width: int, action_dim: int):
        self.capacity, self.width = capacity, width
        self._slots = np.arange(width)[None]
        self.parent = np.full(capacity, -1, np.int64)
        self.depth = np.zeros(capacity, np.int64)
        self.action = np.zeros((capacity, action_dim), np.float32)
        self.reward = np.zeros(capacity, np.float64)
        self.leaf_value = np.zeros(capacity, np.float64)  # value estimate of the state after the edge
        self.visits = np.zeros(capacity, np.int64)
        self.value_sum = np.zeros(capacity, np.float64)  # sum of backed-up returns of the edge into the node
        # The best of them: on a deterministic model a return some path really achieves, which the
        # mean (diluted by exploration further down) understates.
        self.value_max = np.full(capacity, -np.inf, np.float64)
        self.status = np.zeros(capacity, np.int8)
        self.children = np.full((capacity, width), -1, np.int64)
        self.n_children = np.zeros(capacity, np.int64)
        self.line = np.zeros(capacity, np.int64)  # the plan (row of the planner's lines) the node's subtree follows
        self.h = self.z = None  # latent state arrays, sized on the first root
        self.size = 0

    def clear(self) -> None:
        self.size = 0

    def set_root(self, h: np.ndarray, z: np.ndarray) -> None:
        """Root = (h, z) [1, D]; a fresh one-node tree unless a reused tree is in place."""
        if self.h is None or self.h.shape[1] != h.shape[1] or self.z.shape[1] != z.shape[1]:
            self.h = np.zeros((self.capacity, h.shape[1]), np.float32)
            self.z = np.zeros((self.capacity, z.shape[1]), np.float32)
            self.clear()
        if self.size == 0:
            self.new_nodes(np.array([-1]), np.zeros((1, self.action.shape[1]), np.float32), lines=np.array([0]))
            self.status[0] = OK
        # Line numbers belong to the tick that made them; a reused subtree follows the new proposal.
        self.line[: self.size] = 0
        # On a reused tree the root's children were imagined from the predicted
        # state; they are kept (standard subtree reuse) and only the root is refreshed.
        self.h[0], self.z[0] = h[0], z[0]

    def reserve(self, n: int) -> None:
        """Room for n more nodes (doubling the arrays)."""
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

    def new_nodes(self, parents: np.ndarray, actions: np.ndarray, slots=None, lines=None) -> np.ndarray:
        """Append children of `parents` (one each, in order; -1 = a root) with `actions`; status PENDING.
        slots: each child's slot in its parent's row (from select); None: the parents' next free
        slots in order (a parent may appear several times). lines: each child's plan line;
        None: its parent's."""
        n = len(parents)
        self.reserve(n)
        ids = np.arange(self.size, self.size + n)
        self.size += n
        self.parent[ids] = parents
        has_parent = parents >= 0
        self.depth[ids] = np.where(has_parent, self.depth[np.maximum(parents, 0)] + 1, 0)
        self.action[ids] = actions
        self.line[ids] = self.line[np.maximum(parents, 0)] if lines is None else lines
        self.reward[ids] = self.leaf_value[ids] = self.value_sum[ids] = 0.0
        self.value_max[ids] = -np.inf
        self.visits[ids] = 0
        self.n_children[ids] = 0
        self.children[ids] = -1
        self.status[ids] = PENDING
        if has_parent.any():
            p = parents[has_parent]
            if slots is None:
                # Each new child's slot: its parent's current count plus its rank among this
                # call's children of the same parent (in the caller's order).
                slots = self.n_children[p] + group_ranks(p)[3]
            else:
                slots = np.asarray(slots)[has_parent]
            if (slots >= self.width).any():
                raise RuntimeError("MCTS tree: a node got more children than its row holds")
            self.children[p, slots] = ids[has_parent]
            np.add.at(self.n_children, p, 1)
        return ids

    def q(self, nodes: np.ndarray) -> np.ndarray:
        return self.value_sum[nodes] / np.maximum(self.visits[nodes], 1)

    def usable_children(self, node: int) -> np.ndarray:
        kids = self.children[node, : self.n_children[node]]
        return kids[(self.status[kids] == OK) & (self.visits[kids] > 0)]

    def root_children(self) -> np.ndarray:
        return self.children[0, : self.n_children[0]]

    # -- batched selection --------------------------------------------------------

    def select(self, n_paths: int, max_depth: int, allowed_children, exploration: float):
        """Walk `n_paths` paths from the root at once.

        At each level, the paths standing on the same node are spread over that node's
        candidates in score order: first new children (as many as progressive widening
        allows), then the existing children by UCT on sibling-normalised Q. The k-th path
        on a node takes the k-th best candidate, the batched stand-in for virtual loss.
        Returns (paths [n, max_depth + 1] of node ids, -1 padded; leaf level [n];
        new [n] bool: the leaf is a child to create, whose parent is paths[i, level - 1];
        slot [n]: that child's slot in its parent's row, for new_nodes). Paths that would
        duplicate a new child are dropped.
        """
        paths = np.full((n_paths, max_depth + 1), -1, np.int64)
        paths[:, 0] = 0
        level_of = np.zeros(n_paths, np.int64)
        is_new = np.zeros(n_paths, bool)
        slot_of = np.full(n_paths, -1, np.int64)
        keep = np.ones(n_paths, bool)
        active = np.arange(n_paths)
        for level in range(max_depth):
            if active.size == 0:
                break
            cur = paths[active, level]
            uniq, inv, counts, rank = group_ranks(cur)

            nc = self.n_children[uniq]
            parent_visits = self.visits[uniq]
            # Progressive widening, relaxed so that a node reached by m paths in one round may
            # get m children (up to the cap): keeps the round's model batch large.
            allowed = np.maximum(allowed_children(parent_visits + counts),
                                 np.minimum(counts, allowed_children.max_children))
            n_new = np.maximum(allowed - nc, 0)
            kids = self.children[uniq]  # [U, W]; -1 (no child) reads the last node: masked by `usable`
            visits = np.maximum(self.visits[kids], 1)
            usable = (kids >= 0) & (self.status[kids] == OK) & (self.visits[kids] > 0)
            q = self.value_sum[kids] / visits
            q_lo = np.where(usable, q, np.inf).min(axis=1, keepdims=True)
            span = np.where(usable, q, -np.inf).max(axis=1, keepdims=True) - q_lo  # -inf: no usable child
            # Sibling-normalised Q (0.5 where the siblings do not differ) plus the UCT bonus.
            qn = np.where(span > 0, (q - q_lo) / np.where(span > 0, span, 1.0), 0.5)
            explore = exploration * np.sqrt(np.log(np.maximum(parent_visits, 1))[:, None] / visits)
            score = np.where(usable, qn + explore, -np.inf)
            slot = self._slots
            new_slot = (slot >= nc[:, None]) & (slot < (nc + n_new)[:, None])
            score = np.where(new_slot, 1e9 - slot, score)  # new children first, in slot order
            n_cand = usable.sum(axis=1) + n_new
            ranked = np.argsort(-score, axis=1, kind="stable")

            g_cand = n_cand[inv]
            dead_end = g_cand == 0  # every child dead and no widening left: the path ends here
            pick = ranked[inv, rank % np.maximum(g_cand, 1)]
            chose_new = (pick >= nc[inv]) & ~dead_end
            duplicate = chose_new & (rank >= g_cand)  # a second path onto the same new child
            keep[active[dead_end | duplicate]] = False
            go_on = ~(dead_end | duplicate | chose_new)
            made = chose_new & ~duplicate
            created = active[made]
            level_of[created] = level + 1
            is_new[created] = True
            slot_of[created] = pick[made]
            # New children get their ids later (new_nodes); existing ones are known now.
            nxt = active[go_on]
            paths[nxt, level + 1] = kids[inv[go_on], pick[go_on]]
            level_of[nxt] = level + 1
            active = nxt
        return paths[keep], level_of[keep], is_new[keep], slot_of[keep]

    # -- backup --------------------------------------------------------------------------

    def backup(self, paths: np.ndarray, leaf_level: np.ndarray, discount: float) -> None:
        """Add each path's discounted return to every edge on it (and a visit to every node)."""
        leaf = paths[np.arange(len(paths)), leaf_level]
        ok = self.status[leaf] != DEAD
        paths, leaf_level, leaf = paths[ok], leaf_level[ok], leaf[ok]
        if len(paths) == 0:
            return
        ret = self.leaf_value[leaf].copy()
        for level in range(int(leaf_level.max()), 0, -1):
            on = leaf_level >= level
            nodes = paths[on, level]
            ret[on] = self.reward[nodes] + discount * ret[on]
            np.add.at(self.value_sum, nodes, ret[on])
            np.maximum.at(self.value_max, nodes, ret[on])
            np.add.at(self.visits, nodes, 1)
        self.visits[0] += len(paths)

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
        m = len(order)
        for name in self._PER_NODE:
            arr = getattr(self, name)
            arr[:m] = arr[order]
        self.parent[:m] = np.where(self.parent[:m] >= 0, remap[np.maximum(self.parent[:m], 0)], -1)
        self.parent[0] = -1
        kids = self.children[:m]
        kids[:] = np.where(kids >= 0, remap[np.maximum(kids, 0)], -1)
        self.depth[:m] -= self.depth[0]
        self.size = m


def group_ranks(values: np.ndarray):
    """(unique values, index of each entry's group, group sizes, rank of each entry within its
    group in the given order): np.unique's answer plus the ranks, from one stable sort."""
    n = len(values)
    if n and values.min() == values.max():  # one group (e.g. every path at the root): no sort
        return values[:1], np.zeros(n, np.int64), np.array([n]), np.arange(n)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.empty(n, bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    inv = np.empty(n, np.int64)
    inv[order] = group
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - starts[group]
    counts = np.diff(np.r_[starts, n])
    return ordered[starts], inv, counts, rank


def widening(k: float, alpha: float, max_children: int):
    """Progressive widening: a node with N visits may have min(max_children, ceil(k N^alpha)) children."""
    def allowed(n: np.ndarray) -> np.ndarray:
        return np.minimum(max_children, np.ceil(k * np.maximum(n, 1) ** alpha).astype(np.int64))
    allowed.max_children = max_children
    return allowed
