"""The bundle manifest: what a model bundle holds and how to call its graphs.

Written by `mbrl_ros.export`, read here. Format (FORMAT_VERSION 2):

    format, format_version, version, created (UTC ISO-8601), training_step,
    source_data (free-form: hashes/lists of the episodes trained on),
    obs_spec, action_spec (mbrl_ros.spec dicts), has_value, world_model_config,
    has_reward (optional, default true): false for a model trained on data without a reward
        (reward_source none): its reward/value outputs mean nothing and no controller plans
        with it (runtime/reward_check.py) until `mbrl-ros relabel` gives it a task's reward,
    sizes: {deter, stoch, embed, action, fused_horizon}
        fused_horizon: the fixed number of steps the `imagine` graph unrolls in
        one call (the CEM/MPPI planning horizon the bundle serves at full speed)
    normalisation: where observation preprocessing happens ("in-graph": uint8
        image and raw joints go straight in; nothing to do outside)
    graphs: {filter|step|imagine: {file, sha256, inputs: [{name, dtype, shape}],
             outputs: [...]}}   shape entries are ints or "batch"
    files: {initial_state: {file, sha256}}
    parity: max |onnx - torch| figures measured at export
    manifest_sha256: sha256 of every other field (canonical JSON), written at publish time, so a
        hand-edited field (e.g. action limits) makes the manifest fail verification
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mbrl_ros.runtime.store_layout import (DEFAULT_MAX_GRAPH_BYTES, MAX_MANIFEST_BYTES, StoreFileError,
                                           read_store_file)
from mbrl_ros.spec import ActionSpec, ObsSpec

FORMAT = "mbrl_ros.bundle"
FORMAT_VERSION = 2
# Format version -> the `sizes` key holding the fused rollout length (version 1 called it "horizon").
FUSED_HORIZON_KEYS = {1: "horizon", 2: "fused_horizon"}
# The fused rollout length an export gets when it names none: CEMConfig/MPPIConfig's own
# default horizon, and the shipped models/reacher2d bundle's.
DEFAULT_FUSED_HORIZON = 10
GRAPHS = ("filter", "step", "imagine")
BATCH = "batch"  # the symbolic batch axis in manifest shapes

# Tensor names, the contract between exporter and runtime.
FILTER_INPUTS_IMAGE = ("image", "joints", "h", "z", "action")
FILTER_INPUTS_JOINTS = ("joints", "h", "z", "action")
FILTER_OUTPUTS = ("h_next", "z_next")
STEP_INPUTS = ("h", "z", "action")
STEP_OUTPUTS = ("h_next", "z_next", "reward", "value", "cont")
IMAGINE_INPUTS = ("h", "z", "actions")
IMAGINE_OUTPUTS = ("rewards", "values")


class BundleError(ValueError):
    """A bundle that must not be used: missing/corrupt files, bad manifest, wrong shapes."""


MANIFEST_CHECKSUM = "manifest_sha256"


def manifest_checksum(raw: dict) -> str:
    """sha256 of the manifest's fields except the checksum itself, as canonical JSON."""
    body = {k: v for k, v in raw.items() if k != MANIFEST_CHECKSUM}
    return sha256_bytes(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def seal(raw: dict) -> dict:
    """The manifest with its checksum (the exporter calls this last, after every field is final)."""
    return {**raw, MANIFEST_CHECKSUM: manifest_checksum(raw)}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A parsed, checked manifest. `raw` keeps every field for diagnostics."""

    raw: dict
    obs_spec: ObsSpec
    action_spec: ActionSpec
    deter: int
    stoch: int
    embed: int
    fused_horizon: int  # steps the `imagine` graph unrolls in one call
    has_value: bool
    has_reward: bool = True  # False: trained without a reward (reward_source none)

    @property
    def version(self) -> str:
        return self.raw["version"]

    def graph(self, name: str) -> dict:
        return self.raw["graphs"][name]

    def to_json(self) -> str:
        return json.dumps(self.raw, indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict, where: str = "manifest") -> "Manifest":
        """Check the structure and build; any problem is a BundleError naming it."""
        try:
            if raw.get("format") != FORMAT:
                raise BundleError(f"{where}: format is {raw.get('format')!r}, expected {FORMAT!r}")
            format_version = raw.get("format_version")
            if isinstance(format_version, bool) or format_version not in FUSED_HORIZON_KEYS:
                raise BundleError(f"{where}: format_version {format_version!r} is not supported "
                                  f"(this runtime reads {sorted(FUSED_HORIZON_KEYS)})")
            for key in ("version", "obs_spec", "action_spec", "sizes", "graphs", "files", "has_value"):
                if key not in raw:
                    raise BundleError(f"{where}: missing field '{key}'")
            for name in GRAPHS:
                entry = raw["graphs"].get(name)
                if not entry or not all(k in entry for k in ("file", "sha256", "inputs", "outputs")):
                    raise BundleError(f"{where}: graph '{name}' missing or incomplete")
            if "initial_state" not in raw["files"]:
                raise BundleError(f"{where}: files.initial_state missing")
            sizes = raw["sizes"]
            horizon_key = FUSED_HORIZON_KEYS[format_version]
            if horizon_key not in sizes:
                raise BundleError(f"{where}: sizes.{horizon_key} missing (format_version {format_version})")
            fused_horizon = int(sizes[horizon_key])
            if fused_horizon < 1:
                raise BundleError(f"{where}: sizes.{horizon_key} must be >= 1, got {fused_horizon}")
            if not isinstance(raw["has_value"], bool):  # bool() would read any list or "false" as true
                raise BundleError(f"{where}: has_value must be true or false, got {raw['has_value']!r}")
            return cls(raw=raw, obs_spec=ObsSpec.from_dict(raw["obs_spec"]),
                       action_spec=ActionSpec.from_dict(raw["action_spec"]),
                       deter=int(sizes["deter"]), stoch=int(sizes["stoch"]), embed=int(sizes["embed"]),
                       fused_horizon=fused_horizon, has_value=bool(raw["has_value"]),
                       has_reward=bool(raw.get("has_reward", True)))
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(f"{where}: malformed ({type(exc).__name__}: {exc})") from exc


def read_manifest(bundle_dir: Path) -> Manifest:
    """Read and check `<bundle_dir>/manifest.json`."""
    path = Path(bundle_dir) / "manifest.json"
    try:
        raw = json.loads(read_store_file(path, MAX_MANIFEST_BYTES, inside=bundle_dir))
    except FileNotFoundError as exc:
        raise BundleError(f"{path}: missing (bundle incomplete?)") from exc
    except StoreFileError as exc:
        raise BundleError(str(exc)) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: not a JSON object")
    recorded = raw.get(MANIFEST_CHECKSUM)
    if recorded is None:
        raise BundleError(f"{path}: no {MANIFEST_CHECKSUM} (not sealed at publish time; re-export the bundle)")
    if recorded != manifest_checksum(raw):
        raise BundleError(f"{path}: {MANIFEST_CHECKSUM} does not match its fields (edited after publishing?)")
    return Manifest.from_dict(raw, str(path))


def read_verified(bundle_dir: Path, entry: dict, max_bytes: int = DEFAULT_MAX_GRAPH_BYTES) -> bytes:
    """The bytes of a bundle file, checked against the sha256 the manifest records.

    Reading once and hashing what was read means the bytes we load are the bytes we checked.
    """
    name = entry["file"]
    if "/" in name or "\\" in name or name.startswith("."):
        raise BundleError(f"bundle file name {name!r} is not a plain file name")
    path = Path(bundle_dir) / name
    try:
        data = read_store_file(path, max_bytes, inside=bundle_dir)
    except FileNotFoundError as exc:
        raise BundleError(f"{path}: missing") from exc
    except StoreFileError as exc:
        raise BundleError(str(exc)) from exc
    digest = sha256_bytes(data)
    if digest != entry["sha256"]:
        raise BundleError(f"{path}: sha256 {digest[:12]}... does not match manifest {str(entry['sha256'])[:12]}... "
                          f"(corrupt or truncated, {len(data)} bytes)")
    return data
