"""spin_until_shutdown: a context shut down between rclpy.ok() and the wait (a SIGTERM at an
episode's end, under load) ends the node's loop quietly instead of with exit code 1."""

from __future__ import annotations

import pytest

from para_ros.nodes.entry import spin_until_shutdown

pytestmark = pytest.mark.ros


@pytest.fixture
def ros_context():
    import rclpy

    # loopback and the run's own domain: tests/conftest.py set them for this process
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    ctx.try_shutdown()


def test_a_shutdown_between_ok_and_the_wait_ends_the_loop(ros_context):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    node = rclpy.create_node("para_spin_test", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    calls = []

    def spin_once():
        calls.append(1)
        if len(calls) == 3:
            ros_context.try_shutdown()  # the signal handler's shutdown, after ok() said True
        executor.spin_once(timeout_sec=0.01)

    # without the helper, the third wait raises RCLError (the context is not valid)
    spin_until_shutdown(spin_once, ros_context.ok)
    assert len(calls) == 3 and not ros_context.ok()


def test_an_rcl_error_while_the_context_is_ok_is_raised_and_more_stops_the_loop(ros_context):
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

    def failing():
        raise _rclpy.RCLError("something else")

    with pytest.raises(_rclpy.RCLError, match="something else"):
        spin_until_shutdown(failing, ros_context.ok)
    calls = []
    spin_until_shutdown(lambda: calls.append(1), ros_context.ok, lambda: len(calls) < 5)
    assert len(calls) == 5
