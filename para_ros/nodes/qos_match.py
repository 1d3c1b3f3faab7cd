"""Subscriptions that take the QoS their publishers offer (no incompatible-QoS warnings).

A calibration topic may come from a latched publisher (reliable + transient local: a late
subscriber still gets the one message) or from a live one (camera drivers publish CameraInfo
with every image, reliable or best effort). One fixed subscription cannot serve both without
an "incompatible QoS" warning on one side: a transient-local reader never matches a volatile
writer, and a volatile reader receives no history. So this subscribes best effort + volatile
from the start (it matches every publisher, live messages arrive from the first one on) and,
like `ros2 topic echo`, looks at the publishers on the topic (now and every `period` s) to add
a transient-local subscription with the reliability of each latched publisher it finds (the
history a late subscriber needs). A message that reaches two subscriptions is delivered twice;
callbacks only store the newest.
"""

from __future__ import annotations

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy


def subscription_qos(publisher_qos) -> tuple[str, QoSProfile]:
    """(kind, QoS of the subscription that receives everything this publisher sends)."""
    if publisher_qos.durability == DurabilityPolicy.TRANSIENT_LOCAL:
        reliability = publisher_qos.reliability
        if reliability not in (ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT):
            reliability = ReliabilityPolicy.RELIABLE
        kind = f"latched_{reliability.name.lower()}"
        return kind, QoSProfile(
            depth=1, reliability=reliability, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
    return "live", QoSProfile(
        depth=5, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE
    )


class MatchingSubscription:
    """Subscribe `topic` (`msg_type`) with the QoS of its publishers; see the module doc."""

    KINDS = ("latched_reliable", "latched_best_effort", "live")

    def __init__(self, node: Node, msg_type, topic: str, callback, period: float = 0.5):
        self.node, self.msg_type, self.topic, self.callback = node, msg_type, topic, callback
        self.kinds: set[str] = set()
        self._add(*subscription_qos(QoSProfile(depth=5)))  # volatile publishers: "live"
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # runs while /clock is paused
        self._timer = node.create_timer(period, self._check, clock=steady)
        self._check()

    def _check(self) -> None:
        for info in self.node.get_publishers_info_by_topic(self.topic):
            if info.node_name == self.node.get_name() and (
                info.node_namespace == self.node.get_namespace()
            ):
                continue
            self._add(*subscription_qos(info.qos_profile))
        if self.kinds >= set(self.KINDS):
            self._timer.cancel()

    def _add(self, kind: str, qos: QoSProfile) -> None:
        if kind not in self.kinds:
            self.kinds.add(kind)
            self.node.create_subscription(self.msg_type, self.topic, self.callback, qos)
