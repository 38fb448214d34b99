"""The fp32 roofline of latent imagination on this CPU: how fast imagine() could possibly go.

ORT and eager torch run the same matrix multiplies; neither can beat the machine's own
GEMM rate. Counting the FLOPs of one latent step and measuring the single-thread fp32
GEMM peak turns "ORT >= 2x eager torch at equal work" into a checkable bound: if torch
already runs at more than half the peak, no fp32 engine on this core can be 2x faster.
"""
from __future__ import annotations

import numpy as np
import torch
from common import timings


def flops_per_latent_step(latent, state, action_dim: int, horizon: int) -> float:
    """FLOPs per candidate per imagined step of a TorchLatentModel (matmuls count 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = 64
    actions = np.zeros((batch, horizon, action_dim), np.float32)
    with FlopCounterMode(display=False) as counter:
        latent.imagine(state, actions)
    return counter.get_total_flops() / (batch * horizon)


def gemm_peak_gflops(size: int = 1024, calls: int = 10) -> dict[str, float]:
    """Single-thread fp32 GFLOP/s of a size^3 MatMul in ORT and in torch: the machine's practical peak."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])],
        initializer=[onnx.numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    flops = 2.0 * size ** 3
    ort_t = timings(lambda: session.run(None, {"a": a}), calls, warmup=2).min()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    torch_t = timings(lambda: torch.mm(ta, tb), calls, warmup=2).min()
    torch.set_num_threads(threads)
    return {"ort": flops / ort_t / 1e9, "torch": flops / torch_t / 1e9}

