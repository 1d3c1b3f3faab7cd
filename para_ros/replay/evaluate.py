"""Offline replay evaluation: score a policy on recorded frames (pure: no rclpy, no torch).

Frames come from the same reader training uses (para_ros.data.rosbag_io), the policy is
the same runtime the node uses (OnnxPolicy.infer), and the errors are the shared per-step
metrics (para_ros.core.metrics). Ground truth for frame i at step k is the recorded EEF at
time t_i + (k + 1) * dt (dt from the model's PolicySpec), taken from the recorded frame
nearest to that time; past the end of the recording the last frame is held, as in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from para_ros.core.action_codec import Codecs, decode_chunk, encode_targets
from para_ros.core.contract import PolicySpec
from para_ros.core.image import prepare
from para_ros.core.metrics import MetricSummary, chunk_errors
from para_ros.runtime.onnx_policy import Observation, ObservationError, PolicyResult


def future_indices(times: np.ndarray, i: int, dt: float, steps: int) -> np.ndarray:
    """(steps,) indices of the frames nearest to times[i] + (k + 1) dt, clamped to the end."""
    want = times[i] + dt * (np.arange(steps) + 1)  # (steps,)
    k = np.clip(np.searchsorted(times, want), 1, len(times) - 1)
    left_closer = np.abs(times[k - 1] - want) <= np.abs(times[k] - want)
    return np.where(left_closer, k - 1, k)


class OraclePolicy:
    """Answers with the classes of the recorded future itself (a perfect model): replay with
    it checks the bag, the camera calibration and the geometry; its errors are the bin
    quantisation alone."""

    def __init__(self, spec: PolicySpec):
        self.spec = spec
        self.codecs = Codecs.from_spec(spec)
        self.model_id = "oracle"
        self.providers = ["oracle"]
        self._future: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def set_future(self, pos: np.ndarray, euler: np.ndarray, gripper: np.ndarray) -> None:
        self._future = (pos, euler, gripper)

    def infer(self, obs: Observation, with_heatmap: bool = False) -> PolicyResult:
        spec = self.spec
        _, K = prepare(obs.image, obs.K, (spec.image.height, spec.image.width))
        pos, euler, grip = self._future
        tg = encode_targets(spec, self.codecs, pos, euler, grip, K, obs.T_world_cam)
        chunk = decode_chunk(
            spec,
            self.codecs,
            tg.voxel,
            np.ones(len(pos)),
            tg.gripper_bins,
            tg.rotation_bins,
            K,
            obs.T_world_cam,
        )
        return PolicyResult(
            chunk=chunk,
            start_keypoint=np.zeros(3, np.float32),
            K_model=K,
            heatmap=None,
            preprocess_ms=0.0,
            inference_ms=0.0,
            decode_ms=0.0,
        )


@dataclass
class ReplayResult:
    summary: dict[str, float]
    frames: list[dict] = field(default_factory=list)  # one record per evaluated frame
    skipped: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)


def _percentiles(v: list[float]) -> dict[str, float]:
    if not v:
        return {}
    a = np.asarray(v)
    return {
        "median": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
    }


def evaluate_episode(
    policy, episode, every: int = 1, progress: Callable | None = None
) -> ReplayResult:
    """Score `policy` (OnnxPolicy or OraclePolicy) on every `every`-th frame of `episode`."""
    spec: PolicySpec = policy.spec
    codecs = Codecs.from_spec(spec)
    hw = (spec.image.height, spec.image.width)
    euler = episode.eef_euler()
    times = np.asarray(episode.time, dtype=np.float64)
    summary = MetricSummary()
    frames: list[dict] = []
    skipped: dict[str, int] = {}
    lat = {"preprocess": [], "inference": [], "decode": []}
    indices = range(0, len(episode), every)
    for i in progress(indices) if progress else indices:
        fut = future_indices(times, i, spec.window.dt, spec.window.steps)
        K, T_wc = episode.K_at(i), episode.T_world_cam_at(i)
        if isinstance(policy, OraclePolicy):
            policy.set_future(episode.eef_pos[fut], euler[fut], episode.gripper[fut])
        # the recorded command being executed at frame i: the one sent after frame i - 1
        grip = float(episode.gripper[i - 1]) if i > 0 else None
        obs = Observation(np.asarray(episode.rgb[i]), K, T_wc, episode.eef_pos[i], grip)
        try:
            res = policy.infer(obs)
        except ObservationError as exc:
            key = f"observation: {exc}"
            skipped[key] = skipped.get(key, 0) + 1
            continue
        _, K_model = prepare(np.asarray(episode.rgb[i]), K, hw)
        tg = encode_targets(
            spec, codecs, episode.eef_pos[fut], euler[fut], episode.gripper[fut], K_model, T_wc
        )
        errors = chunk_errors(spec.rotation.mode, res.chunk, tg, episode.eef_pos[fut], euler[fut])
        summary.add(errors)
        for key in lat:
            lat[key].append(getattr(res, f"{key}_ms"))
        frames.append(
            {
                "frame": i,
                "time": float(times[i]),
                "pred_pos": res.chunk.positions.tolist(),
                "gt_pos": episode.eef_pos[fut].tolist(),
                "pred_pixels": res.chunk.pixels.tolist(),
                "gt_pixels": tg.pixels.tolist(),
                **{
                    k: [None if not np.isfinite(x) else float(x) for x in v]
                    for k, v in errors.items()
                },
            }
        )
    out = summary.summary()
    out["frames_evaluated"] = len(frames)
    return ReplayResult(
        summary=out,
        frames=frames,
        skipped=skipped,
        latency_ms={k: _percentiles(v) for k, v in lat.items()},
    )
