"""A trainer that raises says so on /diagnostics (ERROR, with the message) and stops training.

The trainer node runs as a real process over real DDS, on a machine where torch cannot be
imported (a `torch` package first on PYTHONPATH that raises ModuleNotFoundError, as on a
robot whose rosdep install left torch out).
"""
import pytest

pytestmark = pytest.mark.ros


def _node_status(diags: list, name: str):
    for msg in reversed(diags):
        for status in msg.status:
            if status.name == name:
                return status
    return None


def test_a_trainer_that_cannot_import_torch_reports_error_and_stops(tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    from mbrl_ros.nodes.cpu_share import thread_nice_values
    from tests.ros_helpers import ROOT, node_process, ros_node, spin_for, spin_until, stop

    no_torch = tmp_path / "no_torch" / "torch"
    no_torch.mkdir(parents=True)
    (no_torch / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    proc = node_process("mbrl_ros.nodes.trainer_node", "-r", "__node:=trainer",
                        "-p", "env_id:=mbrl_ros/Reacher2D-v0", "-p", f"bag_dir:={tmp_path / 'bags'}",
                        "-p", f"work_dir:={tmp_path / 'work'}", "-p", f"model_store:={tmp_path / 'models'}",
                        "-p", "poll_s:=0.2", "-p", "niceness:=12",
                        log_path=tmp_path / "trainer.log", env={"PYTHONPATH": f"{no_torch.parent}:{ROOT}"})
    try:
        with ros_node() as node:
            diags = []
            node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
            log = lambda: (tmp_path / "trainer.log").read_text(errors="replace")[-3000:]  # noqa: E731
            failed = lambda: (s := _node_status(diags, "mbrl_ros: trainer")) is not None and \
                s.level == DiagnosticStatus.ERROR  # noqa: E731
            assert spin_until(node, failed, 90, [proc]), log()
            status = _node_status(diags, "mbrl_ros: trainer")
            assert status.message == "training stopped: ModuleNotFoundError: No module named 'torch'", status.message
            values = {kv.key: kv.value for kv in status.values}
            assert values["state"] == "failed" and values["train_step"] == "0"
            assert "No module named 'torch'" in values["error"]
            # It stays failed (no OK/"training" status later) and the process stays up to say so.
            diags.clear()
            spin_for(node, 4.5)
            later = [s for m in diags for s in m.status if s.name == "mbrl_ros: trainer"]
            assert later and all(s.level == DiagnosticStatus.ERROR for s in later)
            assert proc.poll() is None
            # A background node run on its own (no launcher) still lowers every one of its threads.
            assert set(thread_nice_values(proc.pid).values()) == {12}
        assert "training stopped: ModuleNotFoundError" in (tmp_path / "trainer.log").read_text(errors="replace")
    finally:
        assert stop(proc) == 0
