"""Robot-side runtime: numpy + onnxruntime only. Never import torch or rclpy here
(checked by the import contracts in setup.cfg, run by tests/test_layers.py).

Public API:
  ControlLoop      observations -> belief -> plan -> safe command: the one control path (control.py)
  ModelStore       newest published bundle, hot-swapped safely (model_store.py)
  ModelBundle      one loaded bundle; load_bundle(path) verifies + smoke-tests it (bundle.py)
  BeliefFilter     the robot's latent state from observations (belief.py)
  OnnxLatentModel  the LatentModel planners search in (onnx_latent.py)
  SessionConfig    execution providers + ORT session options (sessions.py)
  BundleError      raised for any unusable bundle (manifest.py)
"""
from __future__ import annotations

from mbrl_ros.runtime.belief import BeliefFilter
from mbrl_ros.runtime.bundle import ModelBundle, load_bundle
from mbrl_ros.runtime.control import ControlConfig, ControlLoop, Observation, PreferredStore, TickResult
from mbrl_ros.runtime.latent import LatentModel, LatentState
from mbrl_ros.runtime.manifest import BundleError, Manifest
from mbrl_ros.runtime.model_store import ModelStore, Refusal
from mbrl_ros.runtime.onnx_latent import OnnxLatentModel
from mbrl_ros.runtime.sessions import OrtGraph, SessionConfig

__all__ = ["BeliefFilter", "BundleError", "ControlConfig", "ControlLoop", "LatentModel", "LatentState", "Manifest",
           "ModelBundle", "ModelStore", "Observation", "OrtGraph", "PreferredStore", "Refusal", "SessionConfig",
           "TickResult", "load_bundle"]
