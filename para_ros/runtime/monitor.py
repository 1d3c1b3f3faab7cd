"""Bookkeeping for the node (pure): stamped state lookup, rates, latency percentiles, skips."""

from __future__ import annotations

import bisect
import threading
from collections import Counter, deque
from typing import Any

import numpy as np


class StampedBuffer:
    """The last `maxlen` (stamp, value) pairs, stamps in seconds; nearest-stamp lookup."""

    def __init__(self, maxlen: int = 200):
        self._items: deque[tuple[float, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Condition()

    def add(self, stamp: float, value: Any) -> None:
        with self._lock:
            if self._items and stamp < self._items[-1][0]:  # out of order: keep sorted
                items = sorted([*self._items, (stamp, value)], key=lambda x: x[0])
                self._items = deque(items, maxlen=self._items.maxlen)
            else:
                self._items.append((stamp, value))
            self._lock.notify_all()

    def wait_nearest(
        self, stamp: float, tolerance: float, timeout: float
    ) -> tuple[Any, float] | None:
        """Like `nearest`, but when nothing at or after `stamp` has arrived yet, wait up to
        `timeout` seconds for it: topics are not delivered in order, and the state matching
        an image often arrives just after the image (message_filters buffers for the same
        reason)."""
        with self._lock:
            self._lock.wait_for(
                lambda: bool(self._items) and self._items[-1][0] >= stamp, timeout=timeout
            )
        return self.nearest(stamp, tolerance)

    def nearest(self, stamp: float, tolerance: float) -> tuple[Any, float] | None:
        """(value, |dt|) of the entry nearest to `stamp` if within `tolerance`, else None."""
        with self._lock:
            if not self._items:
                return None
            stamps = [s for s, _ in self._items]
            k = bisect.bisect_left(stamps, stamp)
            cands = [c for c in (k - 1, k) if 0 <= c < len(stamps)]
            best = min(cands, key=lambda c: abs(stamps[c] - stamp))
            dt = abs(stamps[best] - stamp)
            return (self._items[best][1], dt) if dt <= tolerance else None

    def latest_stamp(self) -> float | None:
        with self._lock:
            return self._items[-1][0] if self._items else None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class RateMeter:
    """Message rate (Hz) over the last `window` seconds of arrival times."""

    def __init__(self, window: float = 5.0):
        self.window = window
        self._t: deque[float] = deque(maxlen=10000)
        self._lock = threading.Lock()

    def tick(self, now: float) -> None:
        with self._lock:
            self._t.append(now)

    def rate(self, now: float) -> float:
        with self._lock:
            while self._t and now - self._t[0] > self.window:
                self._t.popleft()
            if len(self._t) < 2:
                return 0.0
            span = max(self._t[-1] - self._t[0], 1e-9)
            return (len(self._t) - 1) / span


class LatencyStats:
    def __init__(self, maxlen: int = 500):
        self._v: deque[float] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, ms: float) -> None:
        with self._lock:
            self._v.append(ms)

    def percentiles(self) -> dict[str, float]:
        with self._lock:
            if not self._v:
                return {}
            a = np.fromiter(self._v, float)
        return {
            "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)),
            "max": float(a.max()),
            "n": float(len(a)),
        }


class SkipCounter:
    """Why frames were not turned into commands, counted by reason (thread-safe)."""

    def __init__(self):
        self._c: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.last_reason = ""

    def add(self, category: str, detail: str = "") -> None:
        with self._lock:
            self._c[category] += 1
            self.last_reason = f"{category}: {detail}" if detail else category

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c)

    def total(self) -> int:
        with self._lock:
            return sum(self._c.values())


class InputMonitor:
    """One input of a node: what it is, how many messages arrived, were used, were dropped
    and why (thread-safe). `what` names the topic, its type and the expected frame, so a
    report can say exactly what is missing."""

    def __init__(self, name: str, what: str):
        self.name, self.what = name, what
        self.rate = RateMeter()
        self.received = 0
        self.accepted = 0
        self.dropped = SkipCounter()
        self._lock = threading.Lock()

    def receive(self, now: float) -> None:
        self.rate.tick(now)
        with self._lock:
            self.received += 1

    def accept(self) -> None:
        with self._lock:
            self.accepted += 1

    def drop(self, category: str, detail: str) -> None:
        self.dropped.add(category, detail)

    def status(self, publishers: int | None = None) -> str:
        """One line: `what`, the counts, and the newest drop reason if any."""
        with self._lock:
            received, accepted = self.received, self.accepted
        if received == 0:
            pubs = "" if publishers is None else f"; {publishers} publisher(s) on the topic"
            return f"{self.name}: {self.what}: none received{pubs}"
        text = f"{self.name}: {self.what}: {received} received, {accepted} used"
        if self.dropped.total():
            text += f", {self.dropped.total()} dropped (last: {self.dropped.last_reason})"
        return text
