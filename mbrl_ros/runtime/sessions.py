"""ONNX Runtime sessions with an execution-provider preference list and fallback.

`OrtGraph` wraps one graph. It tries the preferred providers in order
(TensorRT -> CUDA -> CPU by default), skipping those this onnxruntime build
does not have and those whose session fails to start. If a run fails on a GPU
provider it logs, rebuilds the session on the next provider and retries, so a
flaky GPU degrades the controller to CPU instead of stopping it.
`active_provider` says what is running (the controller reports it on /diagnostics).

On GPU providers runs go through IO binding: outputs are allocated by ORT on the
device and copied back once, inputs are bound from host memory without ORT's
extra staging copies. On CPU a plain `run` is already zero-copy for numpy.
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
            try:
                self._session = ort.InferenceSession(self._model_bytes, self.config.session_options(),
                                                     providers=providers)
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

    def _run_on(self, session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        device = _DEVICE_OF.get(session.get_providers()[0])
        if device is None:
            return session.run(self.output_names, feeds)
        binding = session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in self.output_names:
            binding.bind_output(name, device, self.config.device_id)
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()
