"""Parity: the exported graphs must compute what the torch model computes.

Both sides get the same random observations/actions; we compare single steps
from identical states and 50-step rollouts where each side carries its own
state (so errors that compound over time show up). Figures are the max over every
output element of |onnx - torch| / max(1, |torch|): the absolute difference for
quantities of unit scale (latent states, probabilities, normalised rewards) and the
relative one above that. fp32 keeps ~7 significant digits, so a value head that
predicts returns of size 100 agrees to ~1e-5 absolute at best; an absolute 1e-4 bound
on such outputs would reject exact exports of well-trained models (seen: 1.2e-4 on
values of ~100). All figures must be <= `tol` (1e-4) or ParityError, except the three
free-running 50-step figures (filter_rollout_50, step_rollout_50, imagine_50), which get
ROLLOUT_FACTOR x tol: there each side carries its own state, so fp32 rounding compounds with
the model's own sensitivity (one export of a trained Reacher-v5 model: step_rollout_50 1.2e-4
while every single-step figure passed). A wrong graph or wiring shows in the single steps and
the fused horizon, which keep the plain bound.

How much rounding a model amplifies grows as it learns (a DMC cartpole_swingup model measured
0.003 at 50 steps, 3x that bound, with every single step at ~1e-6). So the same rollouts are
also run in torch float64 from the same start: `fp32_drift_<figure>` is how far torch's own
float32 rollout is from it, i.e. what fp32 rounding alone does to this model. A free-running
figure passes under SENSITIVITY_FACTOR x that drift too: ONNX may differ from torch as much
as torch differs from exact arithmetic, not more (that run's checkpoint at gradient step 11250:
ONNX vs torch 8.8e-5, torch fp32 vs fp64 2.7e-5 on step_rollout_50; docs/runtime.md).
"""
from __future__ import annotations

import copy
from typing import Optional

import numpy as np
import torch

from mbrl_ros.runtime.bundle import ModelBundle
from mbrl_ros.runtime.latent import LatentState, imagine_by_steps

DEFAULT_TOL = 1e-4
ROLLOUT_FACTOR = 10.0
SENSITIVITY_FACTOR = 10.0
DRIFT_PREFIX = "fp32_drift_"  # report keys of the reference figures: torch fp32 vs torch fp64


class ParityError(ValueError):
    """ONNX and torch disagree beyond tolerance; the bundle must not be published."""

    def __init__(self, report: dict[str, float], tol: float, failures: dict[str, float]):
        self.report, self.tol, self.failures = report, tol, failures  # failures: `parity_failures(report, tol)`
        bounds = parity_bounds(report, tol)
        super().__init__("ONNX/torch parity failed: " + ", ".join(f"{k}={v:.3g} (bound {bounds[k]:.3g})"
                                                                   for k, v in failures.items()))


def free_running(key: str) -> bool:
    """Whether a parity figure is a free-running rollout (`filter_rollout_N`, `step_rollout_N`, `imagine_N`)."""
    return key.startswith(("filter_rollout_", "step_rollout_")) or (
        key.startswith("imagine_") and key != "imagine_fused")


def parity_bounds(report: dict[str, float], tol: float) -> dict[str, float]:
    """The bound each figure of `measure_parity`'s report must meet: `tol`; for the free-running
    rollouts the larger of ROLLOUT_FACTOR x tol and SENSITIVITY_FACTOR x the model's own fp32
    drift on that rollout (`fp32_drift_<figure>`, when measured). The drift figures are references,
    not checked."""
    def bound(key: str) -> float:
        if not free_running(key):
            return tol
        drift = report.get(DRIFT_PREFIX + key, 0.0)
        return max(tol * ROLLOUT_FACTOR, SENSITIVITY_FACTOR * drift if np.isfinite(drift) else 0.0)
    return {k: bound(k) for k in report if not k.startswith(DRIFT_PREFIX)}


def parity_failures(report: dict[str, float], tol: float) -> dict[str, float]:
    """The figures of `report` over their bound (NaN counts as over)."""
    bounds = parity_bounds(report, tol)
    return {k: report[k] for k, bound in bounds.items() if not report[k] <= bound}  # `not <=` also catches NaN


def _maxdiff(*pairs) -> float:
    """max |a - b| / max(1, |b|) over all pairs (b: the torch reference)."""
    worst = 0.0
    for a, b in pairs:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))))
    return worst


class _Inputs:
    """Random observation/action streams shared by both sides."""

    def __init__(self, wm, batch: int, steps: int, seed: int):
        rng = np.random.default_rng(seed)
        spec = wm.obs_spec
        self.joints = rng.normal(0, 1.0, (steps, batch, spec.joint_dim)).astype(np.float32)
        self.images = (rng.integers(0, 256, (steps, batch, *spec.image_shape), dtype=np.uint8)
                       if spec.has_image else None)
        # Slightly outside [-1, 1] so the in-graph clamp is exercised too.
        self.actions = rng.uniform(-1.2, 1.2, (steps, batch, wm.action_dim)).astype(np.float32)

    def obs(self, t: int) -> dict:
        out = {"joints": self.joints[t]}
        if self.images is not None:
            out["image"] = self.images[t]
        return out


@torch.no_grad()
def _torch_filter(wm, h, z, obs: dict, action):
    image = torch.as_tensor(obs["image"]) if "image" in obs else None
    embed = wm.encode(image, torch.as_tensor(obs["joints"]))
    h, z = wm.filter_step(torch.as_tensor(h), torch.as_tensor(z), torch.clamp(torch.as_tensor(action), -1, 1),
                          embed)
    return h.numpy(), z.numpy()


@torch.no_grad()
def _torch_step(wm, h, z, action):
    h, z = wm.prior_step(torch.as_tensor(h), torch.as_tensor(z), torch.clamp(torch.as_tensor(action), -1, 1))
    reward = wm.reward(h, z)
    value = wm.value(h, z) if wm.has_value else torch.zeros_like(reward)
    return h.numpy(), z.numpy(), reward.numpy(), value.numpy(), wm.cont(h, z).numpy()


def measure_parity(wm, bundle: ModelBundle, steps: int = 50, batch: int = 4, seed: int = 0) -> dict[str, float]:
    """Max abs differences ONNX vs torch for filter/step/imagine, single steps and `steps`-step rollouts."""
    wm = wm.eval()
    data = _Inputs(wm, batch, steps, seed)
    report: dict[str, float] = {}
    start = bundle.initial_state(batch)
    with torch.no_grad():
        h0, z0 = (t.numpy() for t in wm.initial_state(batch))
    report["initial_state"] = _maxdiff((start.h, h0), (start.z, z0))

    # Filter: single steps from the torch state, and a rollout where each side keeps its own state.
    th, tz = h0, z0
    onnx_state = start
    single = rollout = 0.0
    torch_states = []
    for t in range(steps):
        ref = _torch_filter(wm, th, tz, data.obs(t), data.actions[t])
        one = bundle.filter_step(LatentState(th, tz), data.obs(t), data.actions[t])
        single = max(single, _maxdiff((one.h, ref[0]), (one.z, ref[1])))
        onnx_state = bundle.filter_step(onnx_state, data.obs(t), data.actions[t])
        th, tz = ref
        rollout = max(rollout, _maxdiff((onnx_state.h, th), (onnx_state.z, tz)))
        torch_states.append(ref)
    report["filter_single"], report[f"filter_rollout_{steps}"] = single, rollout

    # Imagination from a filtered (realistic) state.
    sh, sz = torch_states[-1]
    single = rollout = 0.0
    th, tz, onnx_state = sh, sz, LatentState(sh, sz)
    torch_steps = []
    for t in range(steps):
        ref = _torch_step(wm, th, tz, data.actions[t])
        torch_steps.append(ref)
        nxt, reward, value, cont = bundle.latent.step_with_cont(LatentState(th, tz), data.actions[t])
        single = max(single, _maxdiff((nxt.h, ref[0]), (nxt.z, ref[1]), (reward, ref[2]), (value, ref[3]),
                                      (cont, ref[4])))
        onnx_state, reward, value, cont = bundle.latent.step_with_cont(onnx_state, data.actions[t])
        th, tz = ref[0], ref[1]
        rollout = max(rollout, _maxdiff((onnx_state.h, th), (onnx_state.z, tz), (reward, ref[2]),
                                        (value, ref[3]), (cont, ref[4])))
    report["step_single"], report[f"step_rollout_{steps}"] = single, rollout
    report.update(fp32_drift(wm, data, torch_states, (sh, sz), torch_steps, steps, batch))

    # The fused graph (its fixed length) and a `steps`-long imagine through the step loop the
    # runtime uses for other lengths (skipped when `steps` is the fused length).
    fused = bundle.manifest.fused_horizon
    for horizon, key in ((fused, "imagine_fused"), (steps, f"imagine_{steps}")):
        if key == f"imagine_{steps}" and horizon == fused:
            continue
        actions = np.resize(np.moveaxis(data.actions, 0, 1), (batch, horizon, wm.action_dim))
        if horizon == fused:
            rewards, values = bundle.latent.imagine(LatentState(sh, sz), actions)
        else:
            rewards, values = imagine_by_steps(bundle.latent, LatentState(sh, sz), actions)
        th, tz = sh, sz
        ref_r, ref_v = [], []
        for t in range(horizon):
            th, tz, r, v, _ = _torch_step(wm, th, tz, actions[:, t])
            ref_r.append(r), ref_v.append(v)
        report[key] = _maxdiff((rewards, np.stack(ref_r, 1)), (values, np.stack(ref_v, 1)))
    report.update(plan_parity(wm, bundle, seed))
    return report


@torch.no_grad()
def fp32_drift(wm, data: _Inputs, filter_states: list, start: tuple, step_outputs: list, steps: int,
               batch: int) -> dict[str, float]:
    """How far torch's float32 free-running rollouts (`filter_states`: (h, z) per step from the initial
    state; `step_outputs`: (h, z, reward, value, cont) per step from `start`) are from the same
    rollouts in float64, compared as the ONNX figures are: `fp32_drift_<figure>`."""
    wm64 = copy.deepcopy(wm).double()
    f64 = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float64)  # noqa: E731
    h, z = (t.double() for t in wm64.initial_state(batch))
    worst = 0.0
    for t in range(steps):
        obs = data.obs(t)
        image = torch.as_tensor(obs["image"]) if "image" in obs else None
        h, z = wm64.filter_step(h, z, torch.clamp(f64(data.actions[t]), -1, 1), wm64.encode(image, f64(obs["joints"])))
        worst = max(worst, _maxdiff((filter_states[t][0], h.numpy()), (filter_states[t][1], z.numpy())))
    out = {f"{DRIFT_PREFIX}filter_rollout_{steps}": worst}
    h, z = f64(start[0]), f64(start[1])
    step_worst = imagine_worst = 0.0
    for t in range(steps):
        h, z = wm64.prior_step(h, z, torch.clamp(f64(data.actions[t]), -1, 1))
        reward = wm64.reward(h, z)
        value = wm64.value(h, z) if wm64.has_value else torch.zeros_like(reward)
        exact = (h, z, reward, value, wm64.cont(h, z))
        pairs = [(got, want.numpy()) for got, want in zip(step_outputs[t], exact)]
        step_worst = max(step_worst, _maxdiff(*pairs))
        imagine_worst = max(imagine_worst, _maxdiff(*pairs[2:4]))
    out[f"{DRIFT_PREFIX}step_rollout_{steps}"] = step_worst
    out[f"{DRIFT_PREFIX}imagine_{steps}"] = imagine_worst
    return out


def plan_parity(wm, bundle: ModelBundle, seed: int = 0, samples: int = 24) -> dict[str, float]:
    """Each fp32 whole-plan graph (plan_<planner>) vs its torch module on the same random state and noise.

    Run with momentum 1, so the sampling mean never moves and every iteration scores the same
    kind of candidates: the compared outputs (best return, CEM's mean elite return / MPPI's weighted
    return, and the untouched plan) are then continuous in the model's outputs, so a tie between
    two candidates' returns (which the elite refit would resolve by a hair) cannot flip the figure.
    The refit itself is held to the numpy planners in tests/test_plan_graph.py.
    Reduced-precision variants are judged by return and latency instead (docs/planners.md).
    """
    from mbrl_ros.export.plan_graphs import CEMPlanGraph, MPPIPlanGraph

    report = {}
    rng = np.random.default_rng(seed + 7)
    for name, graph in sorted(bundle.latent.plan_graphs.items()):
        plan = graph.plan
        if plan.get("precision", "fp32") != "fp32":
            continue
        horizon, a = plan["horizon"], wm.action_dim
        n = max(samples, plan["num_elites"] + 1)
        feeds = {"h": rng.normal(size=(1, wm.deter_dim)).astype(np.float32),
                 "z": rng.normal(size=(1, wm.stoch_dim)).astype(np.float32),
                 "mean": rng.uniform(-0.5, 0.5, (horizon, a)).astype(np.float32),
                 "std": np.full((horizon, a), 0.5, np.float32),
                 "noise": rng.standard_normal((plan["iterations"], n - 1, horizon, a)).astype(np.float32),
                 "low": -np.ones(a, np.float32), "high": np.ones(a, np.float32),
                 "min_std": np.full(a, 0.05, np.float32), "momentum": np.array(1.0, np.float32),
                 "discount": np.array(0.99, np.float32), "value_weight": np.array(1.0, np.float32)}
        if plan["planner"] == "cem":
            module = CEMPlanGraph(wm, horizon, plan["iterations"], plan["num_elites"])
        else:
            module = MPPIPlanGraph(wm, horizon, plan["iterations"], plan["num_elites"], plan["normalize_returns"],
                                   plan["update_std"])
            feeds["temperature"] = np.array(0.5, np.float32)
        got = graph.run(feeds)
        with torch.no_grad():
            want = module(*(torch.from_numpy(np.asarray(feeds[k])) for k in graph.graph.input_names))
        mean_out, _, _, best_return, predicted = (w.numpy() for w in want)
        report[name] = _maxdiff((got[0], mean_out), (got[3], best_return), (got[4], predicted))
    return report


def check_parity(wm, bundle: ModelBundle, tol: float = DEFAULT_TOL, steps: int = 50,
                 batch: int = 4, seed: Optional[int] = 0) -> dict[str, float]:
    """`measure_parity`, raising ParityError with the figures if any exceeds its bound
    (`parity_bounds`: `tol`, or ROLLOUT_FACTOR x tol for the free-running rollouts)."""
    report = measure_parity(wm, bundle, steps=steps, batch=batch, seed=seed or 0)
    failures = parity_failures(report, tol)
    if failures:
        raise ParityError(report, tol, failures)
    return report
