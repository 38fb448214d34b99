import numpy as np
import pytest

from mbrl_ros.runtime.safety import CommandGate, CommandRejected, RateLimiter, check_command
from mbrl_ros.spec import ActionSpec

SPEC = ActionSpec(dim=2, low=(-2.0, -1.0), high=(2.0, 3.0))


def test_check_command_clamps_out_of_range():
    cmd, clamped = check_command([5.0, -7.0], SPEC)
    assert clamped
    np.testing.assert_allclose(cmd, [2.0, -1.0])


@pytest.mark.parametrize("values,reason", [([1.0], "wrong_length"), ([1.0, 2.0, 3.0], "wrong_length"),
                                           ([np.nan, 0.0], "not_finite"), ([0.0, np.inf], "not_finite")])
def test_check_command_rejects(values, reason):
    with pytest.raises(CommandRejected) as info:
        check_command(values, SPEC)
    assert info.value.reason == reason


def test_gate_holds_last_valid_and_times_out():
    gate = CommandGate(SPEC, timeout_s=0.5)
    np.testing.assert_allclose(gate.current(0.0), [0.0, 0.0])  # nothing yet: zero effort
    assert gate.submit([1.0, 1.0], now=1.0) is None
    assert "rejected" in gate.submit([np.nan, 1.0], now=1.1)
    np.testing.assert_allclose(gate.current(1.2), [1.0, 1.0])  # bad command did not replace it
    np.testing.assert_allclose(gate.current(1.6), [0.0, 0.0])  # timeout -> zero
    assert gate.counts["not_finite"] == 1 and gate.counts["timeouts"] == 1
    gate.submit([0.5, 0.5], now=2.0)
    np.testing.assert_allclose(gate.current(2.1), [0.5, 0.5])


def test_gate_reports_the_oldest_command_it_applied_per_window():
    gate = CommandGate(SPEC, timeout_s=0.5)
    gate.current(0.3)
    assert gate.pop_max_age() == 0.0  # no command yet: nothing held, no age
    gate.submit([1.0, 1.0], now=1.0)
    for now in (1.01, 1.04, 1.02):
        gate.current(now)
    assert gate.pop_max_age() == pytest.approx(0.04)
    assert gate.pop_max_age() == 0.0  # the window restarts at each pop
    gate.current(1.8)  # a 0.8 s stall: timed out, zeroed, and the age still counts
    assert gate.pop_max_age() == pytest.approx(0.8) and gate.timed_out
    gate.reset()  # a new episode: no held command, no age until the next one arrives
    gate.current(2.0)
    assert gate.pop_max_age() == 0.0


def test_gate_timeout_survives_an_episode_reset():
    """Commands that stop just before an episode boundary still time out after it (and stay so).

    The sim node resets the gate at each episode; before this, a reset inside the timeout window
    cleared the timed-out state for good, and the diagnostics said "running" to a dead controller.
    """
    gate = CommandGate(SPEC, timeout_s=0.5)
    gate.submit([1.0, 1.0], now=1.0)
    gate.reset()  # new episode 0.1 s after the last command
    np.testing.assert_allclose(gate.current(1.2), [0.0, 0.0])  # the old episode's command is dropped
    assert not gate.timed_out  # ... but the controller is not late yet
    gate.current(1.6)
    assert gate.timed_out and gate.counts["timeouts"] == 1
    gate.reset()  # another episode while the controller is still silent
    gate.current(1.7)
    assert gate.timed_out and gate.counts["timeouts"] == 1  # one stall, one count
    gate.submit([0.5, 0.5], now=2.0)
    np.testing.assert_allclose(gate.current(2.1), [0.5, 0.5])
    assert not gate.timed_out


def test_gate_zero_respects_asymmetric_limits():
    gate = CommandGate(ActionSpec(dim=1, low=(0.5,), high=(1.0,)))
    np.testing.assert_allclose(gate.current(0.0), [0.5])


def test_action_spec_round_trip_and_clip():
    robot = SPEC.to_robot([1.5, -1.0])  # 1.5 is clipped to 1
    np.testing.assert_allclose(robot, [2.0, -1.0])
    np.testing.assert_allclose(SPEC.from_robot(robot), [1.0, -1.0])


def test_rate_limiter():
    limit = RateLimiter(2, max_delta=0.25)
    np.testing.assert_allclose(limit(np.array([1.0, -1.0])), [0.25, -0.25])
    np.testing.assert_allclose(limit(np.array([1.0, -0.3])), [0.5, -0.3])
    with pytest.raises(ValueError):
        RateLimiter(1, 0.0)
