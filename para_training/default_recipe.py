"""`para-train-default`: the recipe of the embedded default model (models/para_libero_spatial_t0).

One command, resumable (a stage whose output exists is skipped; --force re-runs), every stage a
tool of this project run as its own process:

  1. demos      para-make-demos, fresh layouts from the task's sampler (training seeds,
                disjoint from evaluation's), a quarter of them recovery demos (--recovery),
                a track's parts side by side on its cores:
                in_distribution: unshifted layouts + the seed's 16 x 16 object-shift grid;
                position / near tracks: the left / near half of that grid only
  2. basis      para-rotation-basis over the track's demo files (pca1d, gate 0.85)
  3. train      para-train --preset libero128 (a ViT trained from scratch: no pretrained DINO
                weights can be downloaded here; `-- --backbone_weights FILE` with --preset
                vits224 uses the user's own); the preset's augmentation on training samples:
                the camera orbited about the table point it looks at (up to 15 deg, 70% of
                samples, the image redrawn from the demos' depth, labels re-projected) and
                colour jitter
  4. export     para-export (fp32 ONNX with its parity report; --int8 adds a quantised copy)
  5. eval       para-eval-sim: closed loop in LIBERO, in-process, sharded over --jobs processes
                (in_distribution: held-out fresh layouts; position: the right half; near: the
                far half)
  6. matrix     (--matrix-episodes N) para-eval-matrix of the in_distribution model: official
                init states (whether training saw them), viewpoint zero-shot at --thetas x 8
                azimuths and the bowl shifted 3 / 6 / 10 cm in 8 directions (N init states
                per cell), sharded and joined
  7. card       MODEL_CARD.md + card.json: data, configuration, training time and machine,
                open-loop metrics, parity, closed-loop success by setting with N and its 95%
                interval

The in-distribution track gives the shipped model; the position (left -> right) and near
(near -> far) tracks are evaluation only: models of the same recipe trained on a half. All three
are the default; with --jobs 2 two tracks run side by side, one core each (2-core machine). A
run of the position / near tracks alone adds their rows to an installed card (--install),
refused unless they were trained with that card's recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from para_ros.sim.libero_sim import MAX_STEPS
from para_training.card_tracks import HALVES

MODEL_NAME = "para_libero_spatial_t0"


@dataclass
class Track:
    name: str  # "in_distribution" | "position" | "near"
    demo_parts: list[tuple[str, int, list[str]]]  # (part, demos attempted, para-make-demos args)
    eval_args: list[str]
    setting: str  # how the card names the closed-loop setting


# Layout seeds of each demo part (para_ros.sim.layouts.TRAIN_LAYOUT_SEEDS; evaluation draws
# from a disjoint range): parts never share a layout.
PART_SEEDS = {"fresh": (0, 1), "shift": (1000, 2), "left": (2000, 3), "near": (3000, 4)}
CHUNK = 80  # demos attempted per para-make-demos call (one file each)


@dataclass
class RecipeConfig:
    out: Path
    preset: str = "libero128"
    demos: int = 70  # in_distribution: unshifted fresh layouts
    shift_demos: int = 60  # in_distribution: fresh layouts + the seed's 16 x 16 shift grid
    # position / near tracks: their half of the shift grid (fresh layouts + a shift make
    # objects interpenetrate often: 36 of the first 80 attempts were refused)
    position_demos: int = 160
    recovery: float = 0.25  # fraction of demos starting after expert.detour
    epochs: int = 10
    eval_episodes: int = 30  # fresh layouts (evaluation seeds)
    ood_cells_grid: int = 4
    ood_episodes_per_cell: int = 6
    # > 0: para-eval-matrix rows (official, viewpoint, shift), starts per cell
    matrix_episodes: int = 0
    # > 0: the in_distribution model through ROS 2 with the bridge's real-time executor (the
    # arm keeps moving while the node computes), official init states 0..N-1
    realtime_episodes: int = 20
    official_episodes: int = 50  # the matrix's official row: init states 0..N-1
    thetas: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 25.0)
    # Chunk step executed per frame. 1 (4 recorded frames ahead) measured on the model shipped
    # before 2026-12-06, init states 0-5: 5/6 PLACE; step 0 (2 frames ahead): 2/15 PLACE, its short
    # targets land a height bin or a cell off and the gripper closed ~3 cm above the bowl.
    execute_step: int = 1
    max_steps: int = MAX_STEPS
    jobs: int = 2
    tracks: tuple[str, ...] = ("in_distribution", "position", "near")
    train_args: list[str] = field(default_factory=list)
    force: bool = False
    int8: bool = False

    @property
    def image_size(self) -> int:
        """Demos are rendered at the model's input size (square), as the sim renders later."""
        from para_training.configs import get_preset

        data = get_preset(self.preset)["data"]
        return int(data.get("image_height", 224))

    def parts(self, name: str, episodes: int, *setting: str) -> list[tuple[str, int, list[str]]]:
        """The demo part `name` in chunks of at most CHUNK attempts, each its own file and
        seeds (chunk j: layout seeds from PART_SEEDS start + CHUNK j, --seed seed + 10 j), so
        a part can grow without changing the demos already made."""
        start, seed = PART_SEEDS[name]
        out = []
        for j, first in enumerate(range(0, episodes, CHUNK)):
            args = ["--layouts", "fresh", "--layout-seed-start", str(start + first)]
            args += ["--seed", str(seed + 10 * j), "--recovery", str(self.recovery)]
            n = min(CHUNK, episodes - first)
            out.append((name if j == 0 else f"{name}_{j}", n, [*setting, *args]))
        return out

    def track(self, name: str) -> Track:
        grid = ["--setting", "position", "--grid", "16"]
        if name == "in_distribution":
            parts = self.parts("fresh", self.demos, "--setting", "in_distribution")
            parts += self.parts("shift", self.shift_demos, *grid)
            return Track(
                name,
                parts,
                ["--layouts", "fresh", "--episodes", str(self.eval_episodes)],
                f"fresh layouts ({self.eval_episodes} held-out sampler seeds)",
            )
        if name in ("position", "near"):
            train_half, test_half = HALVES[name]
            g = self.ood_cells_grid
            return Track(
                name,
                self.parts(train_half, self.position_demos, *grid, "--half", train_half),
                ["--half", test_half, "--grid", str(g)]
                + ["--episodes", str(self.ood_episodes_per_cell)],
                f"position OOD (trained on the {train_half} half, tested on the {test_half} "
                f"half of a {g}x{g} shift grid, {self.ood_episodes_per_cell} init states per "
                "cell)",
            )
        raise ValueError(f"unknown track {name!r}; expected in_distribution, position or near")


def _run(cmd: list[str], log: Path) -> float:
    """Run one stage, its output into `log`; returns seconds. Raises with the log's tail."""
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        tail = log.read_text()[-2000:]
        raise RuntimeError(f"stage failed (exit {rc}): {' '.join(cmd)}\n--- {log} ---\n{tail}")
    return time.perf_counter() - t0


def _fresh(done: Path, after: Path | None) -> bool:
    """A stage's output counts as done when it exists and, given `after` (the output it is
    made from), is not older than it: a resumed training re-runs export and evaluation."""
    if not done.exists():
        return False
    return after is None or not after.exists() or done.stat().st_mtime >= after.stat().st_mtime


def _mark_trained(marker: Path, epochs: int) -> None:
    """run/done, dated like latest/'s trainer state (when the last epoch was saved)."""
    import os

    marker.write_text(f"epochs {epochs}\n")
    state = marker.parent / "latest" / "trainer_state.json"
    if state.exists():
        t = state.stat().st_mtime
        os.utime(marker, (t, t))


def _trained_epochs(run_dir: Path) -> int:
    """Epochs finished in run_dir/latest (0 when none): its trainer_state's epoch + 1."""
    state = run_dir / "latest" / "trainer_state.json"
    if not state.exists():
        return 0
    return int(json.loads(state.read_text()).get("epoch", -1)) + 1


def _tool(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def run_track(cfg: RecipeConfig, track: Track, procs: int, say=print) -> dict:
    """Stages 1-5 of one track on `procs` cores (training threads, evaluation shards);
    returns the paths of its outputs."""
    shards = procs
    d = cfg.out / track.name
    d.mkdir(parents=True, exist_ok=True)
    run_dir = d / "run"
    onnx = d / "model.onnx"
    timing_file = d / "timing.json"
    record_lock = threading.Lock()

    def record(name: str, seconds: float) -> None:
        # after every stage, so an interrupted run keeps the times of what it finished
        with record_lock:  # demo parts finish side by side
            old = json.loads(timing_file.read_text()) if timing_file.exists() else {}
            timing_file.write_text(json.dumps({**old, name: seconds}, indent=1))

    def stage(name: str, done: Path, cmd: list[str], after: Path | None = None) -> None:
        # done: its output exists and is not older than the output it is made from
        if _fresh(done, after) and not cfg.force:
            say(f"[{track.name}] {name}: {done} exists, skipped")
            return
        say(f"[{track.name}] {name}: {' '.join(cmd[2:])}")
        seconds = _run(cmd, d / f"{name}.log")
        record(name, seconds)
        say(f"[{track.name}] {name}: done in {seconds:.0f} s")

    def make_demos(part: str, episodes: int, args: list[str]) -> Path:
        path = d / f"demos_{part}.hdf5"
        stage(
            f"demos_{part}",
            path,
            _tool(
                "para_ros.sim.demos",
                "-o",
                str(path),
                "--episodes",
                str(episodes),
                "--image-size",
                str(cfg.image_size),
                "--no-progress",
                *args,
            ),
        )
        return path

    # the parts are independent processes (own files, own layout seeds): side by side on the
    # track's cores; the files keep the parts' order
    with ThreadPoolExecutor(procs) as pool:
        demo_files = list(pool.map(lambda p: make_demos(*p), track.demo_parts))
    basis = d / "rotation_basis.json"
    stage(
        "basis",
        basis,
        _tool("para_training.rotation_basis", *map(str, demo_files), "-o", str(basis)),
    )
    if cfg.force and run_dir.exists():
        shutil.rmtree(run_dir)
    # done = latest/ holds the last epoch; an interrupted training resumes from latest/
    trained = run_dir / "done"
    last_epoch = _trained_epochs(run_dir) - 1
    if last_epoch == cfg.epochs - 1 and not cfg.force:
        if not trained.exists():  # stamped when the training ended, not now
            _mark_trained(trained, cfg.epochs)
    elif trained.exists():
        trained.unlink()  # --epochs changed since, or latest/ is gone
    resume = []
    if 0 <= last_epoch < cfg.epochs - 1 and not cfg.force:
        say(f"[{track.name}] train: resuming after epoch {last_epoch} of {cfg.epochs}")
        resume = ["--resume_from", str(run_dir / "latest")]
    stage(
        "train",
        trained,
        _tool(
            "para_training.train",
            *map(str, demo_files),
            "--rotation_basis",
            str(basis),
            "--preset",
            cfg.preset,
            "--output_dir",
            str(d),
            "--run_name",
            "run",
            "--epochs",
            str(cfg.epochs),
            "--threads",
            str(procs),
            "--no-progress",
            *resume,
            *cfg.train_args,
        ),
    )
    if not trained.exists():
        _mark_trained(trained, cfg.epochs)
    export = [
        "--model-id",
        f"{MODEL_NAME}_{track.name}",
        "--execute-step",  # the executor the model is evaluated with goes into its contract
        str(cfg.execute_step),
    ] + (["--int8"] if cfg.int8 else [])
    stage(
        "export",
        onnx,
        _tool("para_training.export", str(run_dir / "best"), "-o", str(onnx), *export),
        after=trained,
    )
    results = d / "eval" / "results.json"
    if _fresh(results, onnx) and not cfg.force:
        say(f"[{track.name}] eval: {results} exists, skipped")
    else:
        base = [
            "--model",
            str(onnx),
            "-o",
            str(d / "eval"),
            "--image-size",
            str(cfg.image_size),
            "--max-steps",
            str(cfg.max_steps),
            "--execute-step",
            str(cfg.execute_step),
            *track.eval_args,
        ]
        say(f"[{track.name}] eval: {shards} shard(s) of {' '.join(track.eval_args)}")
        t0 = time.perf_counter()
        with ThreadPoolExecutor(shards) as pool:
            list(
                pool.map(
                    lambda i: _run(
                        _tool(
                            "para_ros.sim.evaluate",
                            *base,
                            "--shard",
                            str(i),
                            "--num-shards",
                            str(shards),
                            *(["--gif"] if i == 0 else []),
                        ),
                        d / f"eval_shard{i}.log",
                    ),
                    range(shards),
                )
            )
        shard_files = [str(d / "eval" / f"results_shard{i}of{shards}.json") for i in range(shards)]
        _run(
            _tool("para_ros.sim.evaluate", "merge", *shard_files, "-o", str(results)),
            d / "merge.log",
        )
        record("eval", time.perf_counter() - t0)
    realtime = None
    if track.name == "in_distribution" and cfg.realtime_episodes > 0:
        realtime = d / "realtime" / "results.json"
        realtime.parent.mkdir(exist_ok=True)
        stage(
            "realtime",
            realtime,
            _tool(
                "para_ros.deploy",
                "--sim",
                "--model",
                str(onnx),
                "--mode",
                "realtime",
                "--episodes",
                str(cfg.realtime_episodes),
                "--first-init",
                "0",
                "--max-steps",
                str(cfg.max_steps),
                "--results-path",
                str(realtime),
                "-b",
                f"image_size:={cfg.image_size}",
            ),
            after=onnx,
        )
    return {
        "dir": d,
        "demos": demo_files,
        "run": run_dir,
        "onnx": onnx,
        "results": results,
        "realtime": realtime,
    }


def run_matrix(cfg: RecipeConfig, main: dict, say=print) -> Path:
    """Stage 6: para-eval-matrix of the in_distribution model, official init states (checked
    against its demos), viewpoint zero-shot and object shifts, sharded over cfg.jobs
    processes, joined."""
    out = cfg.out / "matrix"
    done = out / "matrix.json"
    if _fresh(done, main["onnx"]) and not cfg.force:
        say(f"[matrix] {done} exists, skipped")
        return done
    base = [
        "--models", str(main["onnx"]), "--settings", "official", "viewpoint", "shift",
        "--episodes", str(cfg.matrix_episodes), "--thetas", *map(str, cfg.thetas),
        "--official-episodes", str(cfg.official_episodes),
        "--azimuths", "8", "--image-size", str(cfg.image_size),
        "--max-steps", str(cfg.max_steps), "--train-demos", *map(str, main["demos"]),
        "-o", str(out),
    ]  # fmt: skip
    n = max(1, cfg.jobs)
    say(f"[matrix] {n} shard(s): {' '.join(base)}")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        list(
            pool.map(
                lambda i: _run(
                    _tool("para_ros.sim.matrix", *base, "--shard", str(i), "--num-shards", str(n)),
                    cfg.out / f"matrix_shard{i}.log",
                ),
                range(n),
            )
        )
    shards = [str(out / f"matrix_shard{i}of{n}.json") for i in range(n)]
    _run(_tool("para_ros.sim.matrix", "merge", *shards, "-o", str(out)), cfg.out / "matrix.log")
    say(f"[matrix] done in {time.perf_counter() - t0:.0f} s")
    return done


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} x {cpu}, {platform.system()} {platform.release()}, no GPU used"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="para-train-default",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-o", "--out", default="runs/default", help="work folder (resumable)")
    ap.add_argument("--preset", default="libero128", help="para-train preset (tiny for tests)")
    ap.add_argument(
        "--demos", type=int, default=70, help="in_distribution: unshifted fresh-layout demos"
    )
    ap.add_argument(
        "--shift-demos", type=int, default=60, help="in_distribution: shift-grid demos"
    )
    ap.add_argument(
        "--position-demos",
        type=int,
        default=160,
        help="position/near tracks: demos of the half attempted",
    )
    ap.add_argument(
        "--recovery", type=float, default=0.25, help="fraction of recovery demos (each part)"
    )
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--eval-episodes", type=int, default=30, help="fresh layouts (held-out seeds)")
    ap.add_argument("--ood-grid", type=int, default=4, help="position OOD test grid per axis")
    ap.add_argument("--ood-episodes", type=int, default=6, help="init states per OOD cell")
    ap.add_argument(
        "--matrix-episodes",
        type=int,
        default=0,
        help="> 0: para-eval-matrix rows of the in_distribution model (official init states, "
        "viewpoint at each --thetas x 8 azimuths, the bowl shifted 3/6/10 cm x 8 directions), "
        "starts per cell",
    )
    ap.add_argument("--thetas", nargs="+", type=float, default=[5, 10, 15, 20, 25])
    ap.add_argument(
        "--realtime-episodes",
        type=int,
        default=20,
        help="the in_distribution model through ROS 2 (para-deploy --sim --mode realtime): "
        "official init states 0..N-1; 0 = skip",
    )
    ap.add_argument(
        "--official-episodes", type=int, default=50, help="matrix: official init states 0..N-1"
    )
    ap.add_argument(
        "--execute-step", type=int, default=1, help="chunk step executed per frame (node param)"
    )
    ap.add_argument(
        "--max-steps",
        type=int,
        default=MAX_STEPS,
        help="closed-loop policy steps per episode (the expert places in ~50; the seed's 600 "
        "counted 20 Hz delta actions, not 3 cm teleport steps)",
    )
    ap.add_argument("--jobs", type=int, default=2, help="processes side by side")
    ap.add_argument(
        "--tracks",
        nargs="+",
        default=["in_distribution", "position", "near"],
        choices=["in_distribution", "position", "near"],
        help="the card's tracks (two side by side with --jobs 2); a run of the position/near "
        "tracks alone with --install adds their rows to the installed card",
    )
    ap.add_argument("--int8", action="store_true", help="also export and report an int8 copy")
    ap.add_argument("--force", action="store_true", help="re-run stages whose output exists")
    ap.add_argument(
        "--install",
        default="",
        metavar="DIR",
        help="copy the in-distribution model, its card and results to DIR (e.g. "
        "models/para_libero_spatial_t0); a run of the position/near tracks only adds their "
        "rows to the card in DIR, refused unless they were trained with its recipe",
    )
    ap.add_argument(
        "train_args",
        nargs=argparse.REMAINDER,
        help="after --: extra para-train flags, e.g. -- --backbone_weights dinov2_s.safetensors",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    extra = [a for a in args.train_args if a != "--"]
    cfg = RecipeConfig(
        out=Path(args.out),
        preset=args.preset,
        demos=args.demos,
        shift_demos=args.shift_demos,
        position_demos=args.position_demos,
        recovery=args.recovery,
        matrix_episodes=args.matrix_episodes,
        realtime_episodes=args.realtime_episodes,
        official_episodes=args.official_episodes,
        thetas=tuple(args.thetas),
        epochs=args.epochs,
        eval_episodes=args.eval_episodes,
        ood_cells_grid=args.ood_grid,
        ood_episodes_per_cell=args.ood_episodes,
        max_steps=args.max_steps,
        execute_step=args.execute_step,
        jobs=max(1, args.jobs),
        tracks=tuple(dict.fromkeys(args.tracks)),
        train_args=extra,
        force=args.force,
        int8=args.int8,
    )
    try:
        _ = cfg.image_size  # a wrong preset name fails here, with the known names
    except KeyError as exc:
        print(f"para-train-default: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.install and "in_distribution" not in cfg.tracks:
        from para_training.card_tracks import precheck_add

        try:  # before hours of demos and training: what the command line already decides
            precheck_add(cfg, Path(args.install))
        except ValueError as exc:
            print(f"para-train-default: --install: {exc}", file=sys.stderr)
            return 2
    cfg.out.mkdir(parents=True, exist_ok=True)
    tracks = [cfg.track(n) for n in cfg.tracks]
    # tracks side by side, the cores shared among them (threads, evaluation shards)
    procs = max(1, cfg.jobs // len(tracks))
    try:
        with ThreadPoolExecutor(min(cfg.jobs, len(tracks))) as pool:
            outs = list(pool.map(lambda t: run_track(cfg, t, procs), tracks))
    except RuntimeError as exc:
        print(f"para-train-default: {exc}", file=sys.stderr)
        return 1
    from para_training.model_card import write_card

    outs_by_track = dict(zip(cfg.tracks, outs, strict=True))
    matrix = None
    if cfg.matrix_episodes > 0 and "in_distribution" in outs_by_track:
        try:
            matrix = run_matrix(cfg, outs_by_track["in_distribution"])
        except RuntimeError as exc:
            print(f"para-train-default: {exc}", file=sys.stderr)
            return 1
    card = write_card(cfg, outs_by_track, machine(), matrix)
    print(f"model card: {card}")
    if args.install:
        from para_training.model_card import install

        try:
            said = install(cfg, outs_by_track, Path(args.install), matrix, machine())
        except ValueError as exc:  # a track added to a card of another recipe, or no card
            print(f"para-train-default: --install: {exc}", file=sys.stderr)
            return 2
        for line in said:
            print(f"install: {line}")
        print(f"installed to {args.install}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
