"""The layer contracts of ARCHITECTURE.md, checked by import-linter (contracts in setup.cfg)."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint_imports() -> str:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is not installed (requirements/dev.txt)"
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def test_layers_never_import_upward_and_the_runtime_needs_neither_torch_nor_rclpy():
    out = lint_imports()
    for contract in ("Layers never import upward", "The robot-side runtime imports neither torch nor rclpy",
                     "Only nodes and bring-up import rclpy", "The simulated robots need no torch"):
        assert f"{contract} KEPT" in out, out


def test_the_contracts_catch_an_upward_import():
    """A contract that cannot fail proves nothing: a runtime module importing torch must break it."""
    probe = ROOT / "mbrl_ros" / "runtime" / "_contract_probe.py"
    probe.write_text("import torch  # noqa: F401\nfrom mbrl_ros.training import trainer  # noqa: F401\n")
    try:
        exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
        proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        probe.unlink()
    assert proc.returncode != 0
    assert "The robot-side runtime imports neither torch nor rclpy BROKEN" in proc.stdout
    assert "Layers never import upward BROKEN" in proc.stdout
