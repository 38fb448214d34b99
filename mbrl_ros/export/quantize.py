"""Reduced-precision variants of a plan graph, with ONNX Runtime's own tools.

int8: dynamic quantization (onnxruntime.quantization.quantize_dynamic) of the
    MatMul/Gemm weights to signed int8 with 7 significant bits (reduce_range);
    activations are quantized per call from their observed range, so no
    calibration data is needed. On x86 CPUs with AVX-512 VNNI / AVX2 this runs the
    GEMMs in integer arithmetic.
fp16: every float initializer and op in half precision, inputs/outputs kept float32
    (onnxruntime.transformers.float16); for GPUs (on CPU ORT casts back and it is slower).

Either is judged by what the robot gets (return and tick latency, docs/planners.md),
not by output error: the planner only needs the candidates' ranking to survive.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

PRECISIONS = ("int8", "fp16")


def quantize_graph(model_bytes: bytes, precision: str) -> bytes:
    """`model_bytes` (an fp32 ONNX graph) as a `precision` graph; ValueError for an unknown precision."""
    import onnx

    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory(prefix="mbrl_quant_") as tmp:
            src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            src.write_bytes(model_bytes)
            root = logging.getLogger()
            level = root.level
            root.setLevel(max(level, logging.ERROR))  # quiet its "consider pre-processing" notice
            try:
                # per-channel: the GRU gates' rows differ in scale; one scale per output row keeps them apart.
                # reduce_range (weights in [-64, 64]): x86 CPUs without VNNI multiply uint8 activations by
                # int8 weights with vpmaddubsw, which adds pairs of products into int16 and saturates at
                # full-range weights (255 * 127 * 2 > 32767). A bundle is exported once and runs on
                # whatever CPU the robot has; on an AVX2-only EPYC full-range weights moved the test
                # model's predicted return by 14 %, 7-bit ones by 1 % (docs/planners.md).
                quantize_dynamic(src, dst, op_types_to_quantize=["MatMul", "Gemm"], per_channel=True,
                                 reduce_range=True, weight_type=QuantType.QInt8)
            finally:
                root.setLevel(level)
            return dst.read_bytes()
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = onnx.load_from_string(model_bytes)
        # keep_io_types: callers feed and read float32. Shape inference must run: without it the
        # converter leaves Min/Max nodes with one float and one half input, which ORT refuses.
        half = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
        return half.SerializeToString()
    raise ValueError(f"unknown precision {precision!r}; choose from {list(PRECISIONS)}")
