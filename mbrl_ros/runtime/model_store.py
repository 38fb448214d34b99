"""`ModelStore`: the newest published bundle, swapped in safely while the robot runs.

The exporter publishes versions into a store directory and flips `CURRENT`
(mbrl_ros.runtime.store_layout). The store notices a new CURRENT (`poll()`, or a
background thread calling it), and in that thread loads the bundle, verifies its
sha256s, checks it fits the robot, and runs a smoke inference. Only then is the
single `current` reference replaced -- one attribute assignment, atomic in
Python -- so a control tick that reads `store.current` once and uses that object
for the whole tick always sees one complete model.

A bundle that is half-written, corrupt, incompatible or fails its smoke run is
refused: logged with the reason, recorded in `last_refusal` for diagnostics,
not retried until CURRENT changes, and the running model stays.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mbrl_ros.runtime.bundle import ModelBundle, load_bundle
from mbrl_ros.runtime.manifest import BundleError
from mbrl_ros.runtime.sessions import SessionConfig
from mbrl_ros.runtime.store_layout import DEFAULT_MAX_GRAPH_BYTES, StoreFileError, read_current, version_dir
from mbrl_ros.spec import ActionSpec, ObsSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """Why a published version was not taken (for /diagnostics)."""

    version: str
    reason: str
    time: float


class ModelStore:
    """Watches a store directory and holds the newest good bundle.

    obs_spec / action_spec: the robot's; bundles that do not fit are refused (action_spec: the
        same actuators and command limits, runtime.safety.action_spec_mismatch). If None, the
        first bundle loaded sets them, so later bundles must match it.
    load_now: load CURRENT in the constructor (raises if no good bundle exists
        and `required`), else the first `poll()` does.
    max_file_bytes: the largest graph file read; larger ones are refused before any byte is read.

    Nothing in the store is trusted: CURRENT, the version folder and every file are read only as
    regular files inside the store, within size caps (store_layout.read_store_file), and a
    manifest whose `version` is not its folder's name is refused.
    """

    def __init__(self, root: Path, obs_spec: Optional[ObsSpec] = None, action_spec: Optional[ActionSpec] = None,
                 session_config: SessionConfig = SessionConfig(), load_now: bool = True, required: bool = False,
                 max_file_bytes: int = DEFAULT_MAX_GRAPH_BYTES):
        self.root = Path(root)
        self.max_file_bytes = int(max_file_bytes)
        self.obs_spec = obs_spec
        self.action_spec = action_spec
        self.session_config = session_config
        self._current: Optional[ModelBundle] = None
        self._seen: Optional[str] = None  # the CURRENT value last acted on (loaded or refused)
        self.last_refusal: Optional[Refusal] = None
        # The refusal of what CURRENT names now: set while the published version is not the one
        # running (the robot is not doing what was published), cleared when a good one loads.
        self.refusing: Optional[Refusal] = None
        self.swaps = 0
        self._poll_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        if load_now:
            self.poll()
            if required and self._current is None:
                why = self.last_refusal.reason if self.last_refusal else f"no CURRENT in {self.root}"
                raise BundleError(f"model store {self.root}: no usable bundle ({why})")

    @property
    def current(self) -> Optional[ModelBundle]:
        """The running bundle. Read it ONCE per control tick and use that object throughout."""
        return self._current

    @property
    def version(self) -> Optional[str]:
        bundle = self._current
        return bundle.version if bundle else None

    def poll(self) -> bool:
        """Look at CURRENT; load, verify and swap in a new version. True if a swap happened."""
        with self._poll_lock:  # one loader at a time (thread + manual polls)
            try:
                name = read_current(self.root)
            except (ValueError, OSError) as exc:
                self._refuse("CURRENT", str(exc), key=f"bad-current:{exc}")
                return False
            if name is None or name == self._seen:
                return False
            self._seen = name
            try:
                folder = version_dir(self.root, name)
                bundle = load_bundle(folder, self.session_config, self.obs_spec, self.action_spec,
                                     max_file_bytes=self.max_file_bytes)
                if bundle.version != name:
                    raise BundleError(f"manifest version {bundle.version!r} is not its folder's name {name!r}")
            except (BundleError, StoreFileError) as exc:
                self._refuse(name, str(exc))
                return False
            except Exception as exc:  # noqa: BLE001 -- whatever goes wrong, the running model stays
                self._refuse(name, f"{type(exc).__name__}: {exc}")
                return False
            if self.obs_spec is None:
                self.obs_spec = bundle.obs_spec
            if self.action_spec is None:
                self.action_spec = bundle.action_spec
            old = self._current
            self._current = bundle  # the swap: a single reference assignment
            self.swaps += 1
            self.refusing = None
            log.info("model store %s: now running %s (was %s) on %s", self.root, name,
                     old.version if old else None, bundle.active_providers)
            return True

    def _refuse(self, version: str, reason: str, key: Optional[str] = None) -> None:
        if key is not None:
            if key == self._seen:
                return
            self._seen = key
        self.last_refusal = self.refusing = Refusal(version, reason, time.time())
        log.error("model store %s: refused %s: %s; keeping %s", self.root, version, reason, self.version)

    def start(self, interval: float = 1.0) -> "ModelStore":
        """Poll in a daemon thread every `interval` seconds until `stop()`."""
        if self._thread is not None:
            return self
        self._stop.clear()

        def loop():
            # The watcher runs at the node's own priority on purpose. ONNX Runtime holds the GIL
            # while it builds a session, so the control thread waits for that call to end; a
            # lower-priority (niced) watcher takes longer to end it on a busy machine (a priority
            # inversion). benchmarks/bench_swap_stall.py, 2 cores, 2 busy processes: ticks up to
            # 118 ms late with a nice-10 watcher, 24 ms at equal priority (docs/runtime.md).
            while not self._stop.wait(interval):
                try:
                    self.poll()
                except Exception:  # noqa: BLE001 -- the watcher must survive anything
                    log.exception("model store %s: poll failed", self.root)

        self._thread = threading.Thread(target=loop, name="mbrl-model-store", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def diagnostics(self) -> dict[str, str]:
        """Key/values for a diagnostic_msgs KeyValue list."""
        bundle = self._current
        out = {"model_version": bundle.version if bundle else "none", "model_swaps": str(self.swaps)}
        if bundle:
            out["providers"] = ",".join(sorted(set(bundle.active_providers.values())))
        if self.last_refusal:
            out["last_refused_version"] = self.last_refusal.version
            out["last_refusal_reason"] = self.last_refusal.reason
        out["refusing"] = self.refusing.version if self.refusing else ""
        return out
