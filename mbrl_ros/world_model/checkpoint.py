"""Checkpoints: one file holding everything to rebuild, resume or export a world model.

Contents are plain tensors / dicts / numbers / strings only, so loading uses
`torch.load(weights_only=True)` (no arbitrary pickled code). Files are written
atomically (temp file + fsync + os.replace): a crash mid-save leaves the old
checkpoint intact. A corrupt or truncated file raises ValueError naming it.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import torch

from ..fileio import atomic_write_bytes
from ..spec import ActionSpec, ObsSpec
from .config import WorldModelConfig
from .model import WorldModel

FORMAT = "mbrl_ros.world_model/1"
REQUIRED = ("format", "config", "obs_spec", "action_dim", "step", "model")


def save_checkpoint(path: Path, model: WorldModel, step: int, optimizers: Optional[dict] = None,
                    action_spec: Optional[ActionSpec] = None, extra: Optional[dict] = None) -> Path:
    """Write `model` (+ optimiser states and `extra`, e.g. RNG states) to `path` atomically."""
    payload = {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "obs_spec": model.obs_spec.to_dict(),
        "action_dim": int(model.action_dim),
        "action_spec": action_spec.to_dict() if action_spec is not None else None,
        "step": int(step),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizers": {name: opt.state_dict() for name, opt in (optimizers or {}).items()},
        "extra": extra or {},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint payload (weights_only); ValueError if missing, corrupt or not ours."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # zip errors, EOFError, UnpicklingError on truncated/corrupt files
        raise ValueError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"checkpoint {path} is not a world-model checkpoint (format {found!r}, want {FORMAT!r})")
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"checkpoint {path} lacks {missing}")
    return payload


def model_from_payload(payload: dict, path: Path | str = "checkpoint") -> WorldModel:
    """Rebuild the WorldModel described by a checkpoint payload and load its weights."""
    config = WorldModelConfig.from_dict(payload["config"])
    model = WorldModel(config, ObsSpec.from_dict(payload["obs_spec"]), int(payload["action_dim"]))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path}: weights do not fit its own config: {exc}") from exc
    return model


def load_world_model(path: Path, map_location: str | torch.device = "cpu") -> tuple[WorldModel, dict]:
    """(model in eval mode, payload) from a checkpoint file."""
    payload = load_checkpoint(path, map_location)
    model = model_from_payload(payload, path).to(map_location).eval()
    return model, payload
