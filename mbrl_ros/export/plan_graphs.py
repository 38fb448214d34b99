"""Whole-plan graphs: one ONNX Runtime call runs a complete CEM or MPPI plan.

The numpy planners (mbrl_ros.runtime.planners.cem / mppi) call the `imagine`
graph once per iteration and refit in numpy between calls; on a GPU every call
is a host <-> device round trip. These modules trace the same arithmetic (all
iterations unrolled, elite refits with TopK, MPPI's softmax weighting) into one
graph. The noise is an input: the runtime planner draws it with the numpy
planner's own sampler and RNG, so for the same seed both give the same plan
(tests/test_plan_graph.py), and coloured (iCEM) noise works unchanged.

What is baked in at export (recorded in the manifest's `plan` entry, checked by
the runtime planner): horizon (the bundle's fused horizon), iterations,
num_elites, MPPI's normalize_returns/update_std. Everything else is an input, so
one graph serves any bounds, std, momentum, discount, temperature, number of
samples (the noise's second axis) and use_value.

Inputs:  h [1,Dh], z [1,Dz], mean [H,A] (warm start), std [H,A] (sampling std),
         noise [I, N-1, H, A] (unit Gaussian, one slice per iteration), low/high/min_std [A],
         momentum, discount, value_weight (1: bootstrap with the value head, 0: not)
         (+ temperature for MPPI), all float32, the last four 0-d.
Outputs: mean [H,A], std [H,A] (refitted), best [H,A] (best sequence scored),
         best_return, predicted_return (0-d): CEM's mean elite return / MPPI's weighted return.
"""
from __future__ import annotations

import torch
from torch import nn

CEM_INPUTS = ("h", "z", "mean", "std", "noise", "low", "high", "min_std", "momentum", "discount", "value_weight")
MPPI_INPUTS = CEM_INPUTS + ("temperature",)
PLAN_OUTPUTS = ("mean_out", "std_out", "best", "best_return", "predicted_return")


def _clip(x, low, high):
    return torch.maximum(torch.minimum(x, high), low)


class _PlanGraph(nn.Module):
    def __init__(self, world_model, horizon: int, iterations: int):
        super().__init__()
        if horizon < 1 or iterations < 1:
            raise ValueError(f"plan graph needs horizon and iterations >= 1, got {horizon}, {iterations}")
        self.wm = world_model
        self.horizon = int(horizon)
        self.iterations = int(iterations)

    def returns(self, h, z, candidates, discount, value_weight):
        """sum_t discount^t r_t + value_weight * discount^H * v(s_H) per candidate [N]; non-finite -> -inf
        (the numpy planners' sequence_returns, with the imagine graph's action clamp)."""
        n = candidates.shape[0]
        h, z = h.expand(n, -1), z.expand(n, -1)
        actions = torch.clamp(candidates, -1.0, 1.0)
        total = torch.zeros_like(candidates[:, 0, 0])
        weight = torch.ones_like(discount)
        for t in range(self.horizon):
            h, z = self.wm.prior_step(h, z, actions[:, t], sample=False)
            total = total + weight * self.wm.reward(h, z)
            weight = weight * discount
        # without a value head value_weight must still be used, or the ONNX export drops that input
        value = self.wm.value(h, z) if self.wm.has_value else torch.zeros_like(total)
        total = total + value_weight * weight * value
        return torch.where(torch.isfinite(total), total, torch.full_like(total, float("-inf")))

    def candidates(self, mean, std, noise_i, low, high):
        """The current mean first, then N-1 clipped Gaussian samples (GaussianSequenceSampler.sample)."""
        return torch.cat([mean[None], _clip(mean + std * noise_i, low, high)], 0)


class CEMPlanGraph(_PlanGraph):
    """`iterations` CEM refits to the top `num_elites` (CEMPlanner with keep_elites_frac 0)."""

    def __init__(self, world_model, horizon: int, iterations: int, num_elites: int):
        super().__init__(world_model, horizon, iterations)
        self.num_elites = int(num_elites)

    def forward(self, h, z, mean, std, noise, low, high, min_std, momentum, discount, value_weight):
        best_return = torch.full_like(discount, float("-inf"))
        best = mean
        elite_return = torch.zeros_like(discount)
        for i in range(self.iterations):
            cand = self.candidates(mean, std, noise[i], low, high)
            ret = self.returns(h, z, cand, discount, value_weight)
            top, idx = torch.topk(ret, self.num_elites)  # sorted, ties to the lower index (= stable argsort)
            elites = cand[idx]
            better = top[0] > best_return
            best = torch.where(better, cand[idx[0]], best)
            best_return = torch.where(better, top[0], best_return)
            elite_return = top.mean()
            mean = _clip(momentum * mean + (1.0 - momentum) * elites.mean(0), low, high)
            var = ((elites - elites.mean(0)) ** 2).mean(0)  # population std, as numpy's
            std = torch.maximum(momentum * std + (1.0 - momentum) * torch.sqrt(var), min_std)
        return mean, std, best, best_return, elite_return


class MPPIPlanGraph(_PlanGraph):
    """`iterations` MPPI updates (MPPIPlanner): softmax weights over all or the top `num_elites`."""

    def __init__(self, world_model, horizon: int, iterations: int, num_elites: int, normalize_returns: bool,
                 update_std: bool):
        super().__init__(world_model, horizon, iterations)
        self.num_elites = int(num_elites)
        self.normalize_returns = bool(normalize_returns)
        self.update_std = bool(update_std)

    def forward(self, h, z, mean, std, noise, low, high, min_std, momentum, discount, value_weight, temperature):
        init_std = std
        best_return = torch.full_like(discount, float("-inf"))
        best = mean
        predicted = torch.zeros_like(discount)
        for i in range(self.iterations):
            cand = self.candidates(mean, std, noise[i], low, high)
            ret = self.returns(h, z, cand, discount, value_weight)
            if self.num_elites:
                ret, idx = torch.topk(ret, self.num_elites)
                cand = cand[idx]
            finite = torch.isfinite(ret)
            zero = torch.zeros_like(ret)
            top = ret.max()
            better = top > best_return
            best = torch.where(better, cand[torch.argmax(ret)], best)
            best_return = torch.where(better, top, best_return)
            scale = temperature
            if self.normalize_returns:
                count = finite.to(ret.dtype).sum()
                centred = torch.where(finite, ret - torch.where(finite, ret, zero).sum() / count, zero)
                scale = temperature * torch.clamp(torch.sqrt((centred ** 2).sum() / count), min=1e-8)
            w = torch.where(finite, torch.exp((ret - top) / scale), zero)
            w = w / w.sum()
            new_mean = torch.einsum("n,nha->ha", w, cand)
            if self.update_std:
                new_std = torch.sqrt(torch.einsum("n,nha->ha", w, (cand - new_mean) ** 2))
            else:
                new_std = init_std
            mean = _clip(momentum * mean + (1.0 - momentum) * new_mean, low, high)
            std = torch.maximum(momentum * std + (1.0 - momentum) * new_std, min_std)
            predicted = (w * torch.where(finite, ret, zero)).sum()
        return mean, std, best, best_return, predicted


# The config fields a plan graph bakes in, per planner (the runtime planner refuses a config that differs).
BAKED = {"cem": ("iterations", "num_elites"), "mppi": ("iterations", "num_elites", "normalize_returns", "update_std")}
DEFAULT_PLANS = {"cem": {"iterations": 2, "num_elites": 16},
                 "mppi": {"iterations": 2, "num_elites": 0, "normalize_returns": True, "update_std": True}}
SAMPLES = "samples_minus_1"  # the dynamic noise axis: N-1 fresh samples per iteration


def plan_settings(planner: str, overrides=None) -> dict:
    """The baked settings of a `planner` ("cem" | "mppi") plan graph: DEFAULT_PLANS updated by `overrides`."""
    if planner not in DEFAULT_PLANS:
        raise ValueError(f"no plan graph for planner {planner!r}; choose from {sorted(DEFAULT_PLANS)}")
    settings = dict(DEFAULT_PLANS[planner])
    unknown = sorted(set(overrides or {}) - set(settings))
    if unknown:
        raise ValueError(f"plan graph {planner}: unknown settings {unknown}; known: {sorted(settings)}")
    settings.update(overrides or {})
    for key in ("iterations", "num_elites"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "iterations" else 0):
            raise ValueError(f"plan graph {planner}: {key} must be an integer >= "
                             f"{1 if key == 'iterations' else 0}, got {value!r}")
    if planner == "cem" and settings["num_elites"] < 1:
        raise ValueError("plan graph cem: num_elites must be >= 1")
    return settings


def plan_graph_spec(wm, planner: str, horizon: int, settings: dict) -> dict:
    """Module, example inputs and manifest IO of one plan graph (as onnx_export.graph_specs' entries)."""
    dh, dz, a = wm.deter_dim, wm.stoch_dim, wm.action_dim
    iters, n = settings["iterations"], max(8, settings["num_elites"] + 1)
    if planner == "cem":
        module = CEMPlanGraph(wm, horizon, iters, settings["num_elites"])
        names = CEM_INPUTS
    else:
        module = MPPIPlanGraph(wm, horizon, iters, settings["num_elites"], settings["normalize_returns"],
                               settings["update_std"])
        names = MPPI_INPUTS
    shapes = {"h": [1, dh], "z": [1, dz], "mean": [horizon, a], "std": [horizon, a],
              "noise": [iters, SAMPLES, horizon, a], "low": [a], "high": [a], "min_std": [a]}
    example = {"h": torch.zeros(1, dh), "z": torch.zeros(1, dz), "mean": torch.zeros(horizon, a),
               "std": torch.full((horizon, a), 0.5), "noise": torch.randn(iters, n - 1, horizon, a),
               "low": -torch.ones(a), "high": torch.ones(a), "min_std": torch.full((a,), 0.05)}
    scalars = {"momentum": 0.1, "discount": 0.99, "value_weight": 1.0, "temperature": 0.5}
    inputs, args = [], []
    for name in names:
        value = example[name] if name in example else torch.tensor(scalars[name])
        args.append(value)
        inputs.append({"name": name, "dtype": "float32", "shape": shapes.get(name, [])})
    out_shapes = [[horizon, a], [horizon, a], [horizon, a], [], []]
    outputs = [{"name": o, "dtype": "float32", "shape": s} for o, s in zip(PLAN_OUTPUTS, out_shapes)]
    return dict(module=module, example=args, inputs=inputs, outputs=outputs,
                plan=dict(planner=planner, horizon=int(horizon), **settings),
                dynamic={"noise": {1: SAMPLES}})
