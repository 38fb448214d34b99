"""Package a trained checkpoint as a shipped default model: models/<task>/.

    .venv/bin/python scripts/ship_model.py --checkpoint runs/default/train/checkpoint.pt --task reacher2d

Writes an ONNX bundle (parity-checked, published atomically, older versions pruned)
and a slim `checkpoint.pt` beside it (weights, config and specs; no optimiser state)
from which the online trainer continues learning on the robot.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--task", default="reacher2d", help="folder name under models/")
    parser.add_argument("--fused-horizon", type=int, default=10,
                        help="steps the imagine graph unrolls in one call (the CEM/MPPI horizon)")
    parser.add_argument("--plan-precisions", default="",
                        help="reduced-precision variants of the whole-plan graphs to ship too, e.g. int8")
    parser.add_argument("--env", default="mbrl_ros/Reacher2D-v0",
                        help="the robot the model is for: its command limits go into the bundle")
    args = parser.parse_args()

    import torch

    from mbrl_ros.fileio import atomic_write_bytes
    from mbrl_ros.export import export_checkpoint
    from mbrl_ros.world_model.checkpoint import load_checkpoint

    store = ROOT / "models" / args.task
    payload = load_checkpoint(args.checkpoint)
    action_spec = robot_action_spec(args.env, payload)
    result = export_checkpoint(args.checkpoint, store, fused_horizon=args.fused_horizon, keep=1, action_spec=action_spec,
                               plan_precisions=tuple(p for p in args.plan_precisions.split(",") if p))
    payload["action_spec"] = action_spec.to_dict()
    payload["optimizers"] = {}
    extra = dict(payload.get("extra") or {})
    for key in ("torch_rng", "sampler_rng"):
        extra.pop(key, None)
    payload["extra"] = extra
    import io

    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(store / "checkpoint.pt", buf.getvalue())
    size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    print(f"shipped {result.version} to {store} ({size / 2**20:.1f} MiB); parity {result.parity}")
    return 0


def robot_action_spec(env_id: str, payload: dict):
    """The env's ActionSpec, which the controller scales its [-1, 1] actions into.

    A checkpoint trained from a cache that did not record the limits has none (or the
    unnamed [-1, 1] default); a bundle made from it would make the controller publish
    normalised actions as robot units. A checkpoint that does carry limits must agree.
    """
    import mbrl_ros.envs as envs
    from mbrl_ros.spec import ActionSpec

    env = envs.make(env_id, render_image=False)
    spec = env.unwrapped.action_spec
    env.close()
    recorded = ActionSpec.from_dict(payload["action_spec"]) if payload.get("action_spec") else None
    if recorded is not None and recorded.names and recorded.to_dict() != spec.to_dict():
        raise SystemExit(f"the checkpoint's action limits {recorded.to_dict()} are not {env_id}'s {spec.to_dict()}")
    if recorded is not None and recorded.dim != spec.dim:
        raise SystemExit(f"the checkpoint has {recorded.dim} actions, {env_id} has {spec.dim}")
    return spec


if __name__ == "__main__":
    raise SystemExit(main())
