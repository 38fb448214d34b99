"""ONNX Runtime sessions with an execution-provider preference list and fallback.

`OrtGraph` wraps one graph. It tries the preferred providers in order
(TensorRT -> CUDA -> CPU by default), skipping those this onnxruntime build
does not have and those whose session fails to start. If a run fails on a GPU
provider it logs, rebuilds the session on the next provider and retries, so a
flaky GPU degrades the controller to CPU instead of stopping it.
`active_provider` says what is running (the controller reports it on /diagnostics).

On GPU providers runs go through IO binding: outputs are allocated by ORT on the
device and copied back once, inputs are bound from host memory without ORT's
extra staging copies. On CPU a plain `run` is already zero-copy for numpy;
`SessionConfig(io_binding=True)` forces the bound path there too, which is how
CI exercises it (tests/test_gpu_check.py).

`BoundRunner` goes one step further for a graph called with same-shaped inputs
every tick: input and output buffers live on the device at fixed addresses and
are refilled in place, which is what ORT's CUDA-graph capture
(`provider_options={"CUDAExecutionProvider": {"enable_cuda_graph": "1"}}`) needs.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
DEFAULT_PROVIDERS = (TENSORRT, CUDA, CPU)
_DEVICE_OF = {CUDA: "cuda", TENSORRT: "cuda"}
_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class SessionConfig:
    """How sessions are built. Defaults come from benchmarks/bench_inference.py (docs/runtime.md).

    providers: preference order; unknown/unavailable ones are skipped.
    intra_op_threads: threads per operator; 0 = ORT's default (one per core). Default 1: on the
        2-core dev machine, shared with the other nodes, one thread was faster at every batch
        and had a far tighter p99 than one-per-core (docs/runtime.md); raise it on a robot
        with idle cores and large candidate batches.
    optimization: "disable" | "basic" | "extended" | "all".
    """

    providers: tuple[str, ...] = DEFAULT_PROVIDERS
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    optimization: str = "all"
    device_id: int = 0
    extra_options: dict = field(default_factory=dict)  # session config entries, e.g. {"session.intra_op.allow_spinning": "0"}
    # None: IO binding on GPU providers only; True: on every provider (CPU included); False: never.
    io_binding: Optional[bool] = None
    # per-provider options, e.g. {"CUDAExecutionProvider": {"enable_cuda_graph": "1"}}
    provider_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.optimization not in _OPT_LEVELS:
            raise ValueError(f"optimization must be one of {list(_OPT_LEVELS)}, got {self.optimization!r}")
        if not self.providers:
            raise ValueError("providers must name at least one execution provider")
        object.__setattr__(self, "providers", tuple(self.providers))

    def session_options(self) -> ort.SessionOptions:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = _OPT_LEVELS[self.optimization]
        opts.intra_op_num_threads = int(self.intra_op_threads)
        opts.inter_op_num_threads = int(self.inter_op_threads)
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3  # errors only; we log fallbacks ourselves
        for key, value in self.extra_options.items():
            opts.add_session_config_entry(key, str(value))
        return opts


def usable_providers(preferred: Sequence[str]) -> list[str]:
    """`preferred` filtered to what this onnxruntime build offers, CPU always last as the floor."""
    available = set(ort.get_available_providers())
    chosen = [p for p in preferred if p in available and p != CPU]
    return chosen + [CPU]


class OrtGraph:
    """One ONNX graph in a session, with provider fallback. Thread-safe `run`."""

    def __init__(self, model_bytes: bytes, name: str, config: SessionConfig = SessionConfig()):
        self.name = name
        self.config = config
        self._model_bytes = model_bytes
        self._candidates = usable_providers(config.providers)
        self._lock = threading.Lock()
        self._session: Optional[ort.InferenceSession] = None
        self._start(0)
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    @property
    def active_provider(self) -> str:
        return self._session.get_providers()[0]

    def io_signature(self) -> tuple[list, list]:
        """[(name, type string, shape)] for inputs and outputs, as the session sees them."""
        sig = lambda args: [(a.name, a.type, list(a.shape)) for a in args]  # noqa: E731
        return sig(self._session.get_inputs()), sig(self._session.get_outputs())

    def _start(self, first: int) -> None:
        """Build the session on the first provider at index >= `first` that starts."""
        errors = []
        for i in range(first, len(self._candidates)):
            provider = self._candidates[i]
            providers = [provider] if provider == CPU else [provider, CPU]
            options = [dict(self.config.provider_options.get(p, {})) for p in providers]
            try:
                self._session = ort.InferenceSession(self._model_bytes, self.config.session_options(),
                                                     providers=providers, provider_options=options)
                self._index = i
                if errors:
                    log.warning("graph %s: running on %s after %s", self.name, provider, "; ".join(errors))
                else:
                    log.info("graph %s: running on %s", self.name, provider)
                return
            except Exception as exc:  # noqa: BLE001 -- any provider failure means: try the next one
                errors.append(f"{provider} failed to start ({exc})")
        raise RuntimeError(f"graph {self.name}: no execution provider could start it: {'; '.join(errors)}")

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs in `output_names` order. Falls back to the next provider if a GPU run fails."""
        with self._lock:
            while True:
                session = self._session
                try:
                    return self._run_on(session, feeds)
                except Exception as exc:  # noqa: BLE001
                    if self.active_provider == CPU or self._index + 1 >= len(self._candidates):
                        raise
                    log.error("graph %s: run failed on %s (%s); falling back", self.name,
                              self.active_provider, exc)
                    self._start(self._index + 1)

    @property
    def session(self) -> ort.InferenceSession:
        return self._session

    @property
    def device(self) -> str:
        """"cuda" or "cpu": where the active provider keeps its tensors."""
        return _DEVICE_OF.get(self.active_provider, "cpu")

    def uses_io_binding(self) -> bool:
        binding = self.config.io_binding
        return binding if binding is not None else self.active_provider in _DEVICE_OF

    def _run_on(self, session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        device = _DEVICE_OF.get(session.get_providers()[0], "cpu")
        if not self.uses_io_binding():
            return session.run(self.output_names, feeds)
        binding = session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in self.output_names:
            binding.bind_output(name, device, self.config.device_id)
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()


class BoundRunner:
    """Runs one OrtGraph with inputs and outputs bound to fixed device buffers (IO binding).

    The first `run` allocates a device buffer per input (shape and dtype of that feed) and
    lets ORT allocate the outputs; later runs copy the new feeds into the same buffers
    (`update_inplace`) and reuse the same output buffers, so every run sees identical
    addresses: the precondition of ORT's CUDA-graph capture, and one H2D copy per input plus
    one D2H copy per output per run. Feeds must keep their shapes and dtypes (ValueError else).
    Not thread-safe; one per control thread.
    """

    def __init__(self, graph: OrtGraph):
        self.graph = graph
        self.session = graph.session
        self.device = graph.device
        self.device_id = graph.config.device_id if self.device != "cpu" else 0
        self.binding = self.session.io_binding()
        self._inputs: dict[str, ort.OrtValue] = {}
        self._specs: dict[str, tuple] = {}
        self._outputs: Optional[list] = None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if not self._inputs:
            for name in self.graph.input_names:
                value = np.ascontiguousarray(feeds[name])
                # ORT-owned buffers (ortvalue_from_numpy would alias the caller's array on CPU)
                self._inputs[name] = ort.OrtValue.ortvalue_from_shape_and_type(value.shape, value.dtype, self.device,
                                                                               self.device_id)
                self._inputs[name].update_inplace(value)
                self._specs[name] = (value.shape, value.dtype)
                self.binding.bind_ortvalue_input(name, self._inputs[name])
            for name in self.graph.output_names:
                self.binding.bind_output(name, self.device, self.device_id)
        else:
            for name, buf in self._inputs.items():
                value = np.ascontiguousarray(feeds[name])
                if (value.shape, value.dtype) != self._specs[name]:
                    raise ValueError(f"BoundRunner {self.graph.name}: input {name} is {value.dtype}{list(value.shape)}, "
                                     f"the bound buffer {self._specs[name][1]}{list(self._specs[name][0])}")
                buf.update_inplace(value)
        self.binding.synchronize_inputs()
        self.session.run_with_iobinding(self.binding)
        if self._outputs is None:
            # keep ORT's output buffers bound from now on: fixed addresses for every later run
            self._outputs = self.binding.get_outputs()
            self.binding.clear_binding_outputs()
            for name, value in zip(self.graph.output_names, self._outputs):
                self.binding.bind_ortvalue_output(name, value)
        else:
            self.binding.synchronize_outputs()
        return [np.array(value.numpy(), copy=True) for value in self._outputs]  # callers keep results across runs
