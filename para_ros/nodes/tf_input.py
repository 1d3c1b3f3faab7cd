"""/tf and /tf_static into one `TfBuffer` (pure, `para_ros.core.tf_buffer`) for a node.

Subscribes like tf2_ros's TransformListener: /tf reliable + volatile, depth 100 (what
robot_state_publisher and every tf broadcaster offer), /tf_static reliable + transient local,
depth 100 (static_transform_publisher and robot_state_publisher latch one message holding all
their static transforms, so a late subscriber still receives them; static transforms that
arrive after start are added as they come). `tf2_msgs` comes from a ROS install or, on pip
installs, from the interface package this project builds (`interfaces/tf2_msgs`).

Lookups happen at an image stamp: `lookup` waits up to the tolerance (wall clock) for /tf to
reach the stamp, so the pose is interpolated rather than taken from the newest sample, then
refuses (category and reason naming the frames) when the tree is not connected, a frame is
unknown, or the stamp lies outside the buffered samples by more than the tolerance.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from para_ros.core.tf_buffer import TfBuffer, TfError, TfLookupError, add_tf_message
from para_ros.runtime.monitor import InputMonitor, RateMeter, SkipCounter

TF_CACHE_S = 10.0  # seconds of dynamic transforms kept per edge (tf2_ros's default cache)
TF_QOS = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE
)
TF_STATIC_QOS = QoSProfile(
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def import_tf_message():
    """tf2_msgs.msg.TFMessage; ImportError says how to get it."""
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError as exc:
        raise ImportError(
            "tf2_msgs is not importable: on a ROS install source its setup file; a pip install "
            f"of para_ros builds it (reinstall para_ros) ({exc})"
        ) from exc
    return TFMessage


class TfInput:
    """The node's TF: subscriptions, one buffer, and lookups at image stamps (thread-safe)."""

    def __init__(
        self, node: Node, now, monitor: InputMonitor | None = None, cache_s: float = TF_CACHE_S
    ):
        """`monitor`: the node's input that TF feeds (each /tf or /tf_static message is
        received, and used or dropped with the reason)."""
        TFMessage = import_tf_message()
        self.monitor = monitor
        self.buffer = TfBuffer(cache_s)
        self._now = now  # the node's clock, seconds
        self._cond = threading.Condition()
        self.rate = RateMeter()
        self.received = 0  # transforms received on /tf and /tf_static
        self.dropped = SkipCounter()  # transforms refused by the buffer, by reason
        self.last_message: float | None = None  # node clock of the newest /tf or /tf_static
        node.create_subscription(TFMessage, "/tf", lambda m: self._add(m, False), TF_QOS)
        node.create_subscription(
            TFMessage, "/tf_static", lambda m: self._add(m, True), TF_STATIC_QOS
        )

    def _add(self, msg, static: bool) -> None:
        now = self._now()
        self.rate.tick(now)
        if self.monitor is not None:
            self.monitor.receive(now)
        with self._cond:
            self.last_message = now
            self.received += len(msg.transforms)
            try:
                add_tf_message(self.buffer, msg, static)
                refused = None
            except TfError as exc:  # the valid transforms of the message are kept
                refused = str(exc)
                self.dropped.add("tf_invalid", refused)
            self._cond.notify_all()
        if self.monitor is not None:
            if refused is None:
                self.monitor.accept()
            else:
                self.monitor.drop("tf_invalid", refused)

    def reset(self) -> None:
        """Forget the dynamic transforms (a clock that jumped back: the samples of the old
        run must never be interpolated with the new ones); static ones are kept, as tf2's
        listener does, since /tf_static is not sent again."""
        with self._cond:
            self.buffer.clear_dynamic()

    def lookup(
        self, target: str, source: str, stamp: float, tolerance: float
    ) -> tuple[np.ndarray | None, tuple[str, str] | None]:
        """(4x4 T_target_source, None), or (None, (category, reason)) when it cannot be had.

        Waits up to `tolerance` seconds for the newest transform on the path to reach
        `stamp`; then interpolates, or uses the nearest sample within `tolerance`."""
        end = time.monotonic() + tolerance
        with self._cond:
            while True:
                newest = self.buffer.newest_stamp(target, source)
                if newest is None or newest >= stamp or time.monotonic() >= end:
                    break
                self._cond.wait(timeout=max(0.0, end - time.monotonic()))
            try:
                return self.buffer.lookup(target, source, stamp, tolerance), None
            except (TfLookupError, TfError) as exc:
                category = getattr(exc, "category", "tf_invalid")
                refused = self.dropped.last_reason
                why = f"{exc}; refused transforms: {refused}" if refused else str(exc)
                return None, (category, why)
