"""Robot-side runtime: numpy + onnxruntime only. Never import torch or rclpy here.

Public API:
  ModelStore       newest published bundle, hot-swapped safely (model_store.py)
  ModelBundle      one loaded bundle; load_bundle(path) verifies + smoke-tests it (bundle.py)
  BeliefFilter     the robot's latent state from observations (belief.py)
  OnnxLatentModel  the LatentModel planners search in (onnx_latent.py)
  SessionConfig    execution providers + ORT session options (sessions.py)
  BundleError      raised for any unusable bundle (manifest.py)

Submodules are imported lazily so `import mbrl_ros.runtime.latent` (planners,
analytic test models) does not pull in onnxruntime.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ModelStore": "mbrl_ros.runtime.model_store",
    "Refusal": "mbrl_ros.runtime.model_store",
    "ModelBundle": "mbrl_ros.runtime.bundle",
    "load_bundle": "mbrl_ros.runtime.bundle",
    "BeliefFilter": "mbrl_ros.runtime.belief",
    "OnnxLatentModel": "mbrl_ros.runtime.onnx_latent",
    "SessionConfig": "mbrl_ros.runtime.sessions",
    "OrtGraph": "mbrl_ros.runtime.sessions",
    "BundleError": "mbrl_ros.runtime.manifest",
    "Manifest": "mbrl_ros.runtime.manifest",
    "LatentState": "mbrl_ros.runtime.latent",
    "LatentModel": "mbrl_ros.runtime.latent",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mbrl_ros.runtime' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
