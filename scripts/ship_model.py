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
    parser.add_argument("--horizon", type=int, default=10, help="fused imagine horizon (the planners' default)")
    args = parser.parse_args()

    import torch

    from mbrl_ros.fileio import atomic_write_bytes
    from mbrl_ros.export import export_checkpoint
    from mbrl_ros.world_model.checkpoint import load_checkpoint

    store = ROOT / "models" / args.task
    result = export_checkpoint(args.checkpoint, store, horizon=args.horizon, keep=1)
    payload = load_checkpoint(args.checkpoint)
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


if __name__ == "__main__":
    raise SystemExit(main())
