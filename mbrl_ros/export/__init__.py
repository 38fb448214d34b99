"""Torch -> ONNX model bundles (torch, onnx; never rclpy).

  export_to_store(world_model, store, ...)   export + parity + atomic publish (publish.py)
  export_checkpoint(path, store, ...)        the same from a checkpoint file
  write_bundle(world_model, dir, version)    just the files + manifest (onnx_export.py)
  measure_parity / check_parity / ParityError  ONNX vs torch figures (parity.py)
  prune(store, keep)                         delete old versions, never CURRENT
"""
from mbrl_ros.export.onnx_export import write_bundle
from mbrl_ros.export.parity import DEFAULT_TOL, ParityError, check_parity, measure_parity
from mbrl_ros.export.publish import ExportResult, export_checkpoint, export_to_store, prune

__all__ = ["write_bundle", "DEFAULT_TOL", "ParityError", "check_parity", "measure_parity", "ExportResult",
           "export_checkpoint", "export_to_store", "prune"]
