"""The model card of a `para-train-default` run: MODEL_CARD.md for people, card.json for tools
(and tests). Every number in it is read from the run's own files (demos, metrics.jsonl,
the exported ONNX, the closed-loop results), never typed in.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from para_ros.core.stats import format_rate

OPEN_LOOP_KEYS = (
    "val_pix",
    "val_height_mm",
    "val_3d_mm",
    "val_grip_acc",
    "val_rot_err",
    "val_rot_rad",
)


def _demos_summary(paths: list[Path] | Path) -> dict:
    """Totals over a track's demo files, and each file (`parts`): episodes, frames, setting,
    half, layouts and the fraction of recovery demos."""
    import h5py

    parts = []
    for path in [paths] if isinstance(paths, Path) else paths:
        with h5py.File(path, "r") as f:
            data = f["data"]
            demos = [k for k in data if k.startswith("demo_")]
            lengths = [int(data[k].attrs["num_samples"]) for k in demos]
            recovery = sum(json.loads(data[k].attrs.get("meta", "{}")).get("recovery", False)
                           for k in demos)  # fmt: skip
            env = json.loads(data.attrs.get("env_args", "{}"))
            hw = data[demos[0]]["obs/agentview_rgb"].shape[1:3]
        parts.append(
            {
                "file": path.name,
                "episodes": len(lengths),
                "recovery_episodes": int(recovery),
                "recovery": env.get("recovery"),  # the fraction asked of para-make-demos
                "frames": int(sum(lengths)),
                "image_hw": list(hw),
                "setting": env.get("setting", ""),
                "half": env.get("half", ""),
                "layouts": env.get("layouts", "official"),
                "layout_seeds": env.get("layout_seeds"),
                "language": env.get("language", ""),
            }
        )
    first = parts[0]
    return {
        "episodes": sum(p["episodes"] for p in parts),
        "frames": sum(p["frames"] for p in parts),
        "image_hw": first["image_hw"],
        "setting": "+".join(dict.fromkeys(p["setting"] for p in parts)),
        "half": first["half"],
        "language": first["language"],
        "parts": parts,
    }


def _training_summary(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    state = json.loads((run / "best" / "trainer_state.json").read_text())
    best = state["metrics"]
    return {
        "epochs": len(rows),
        "train_seconds": float(sum(r["epoch_seconds"] for r in rows)),
        "best_epoch": int(best["epoch"]),
        "open_loop_best": {k: best[k] for k in OPEN_LOOP_KEYS if k in best},
        "open_loop_last": {k: rows[-1][k] for k in OPEN_LOOP_KEYS if k in rows[-1]},
        "config": json.loads((run / "train_config.json").read_text()),
    }


def _onnx_summary(onnx: Path, ckpt: Path) -> dict:
    from para_ros.core.onnx_metadata import read_spec
    from para_training.export import parity

    out = {
        "file": onnx.name,
        "size_MB": onnx.stat().st_size / 1e6,
        # the executor it was exported (and evaluated) with, from its contract
        "execute_step": read_spec(onnx).executor.execute_step,
        "parity_fp32": parity(onnx, ckpt),
    }
    int8 = onnx.with_suffix(".int8.onnx")
    if int8.exists():
        out["int8_size_MB"] = int8.stat().st_size / 1e6
        out["parity_int8"] = parity(int8, ckpt)
    return out


# Rows of the in-distribution model run through ROS 2 (para-deploy --sim) on official init
# states 0..n-1: name -> the setting's text for n episodes. Their results are the recipe
# track's `outs[name]` and the installed eval_<track>_<name>.json.
ROS_ROWS = {
    "realtime": lambda n: (
        f"official init states 0..{n - 1}, **real-time executor** through ROS 2 (para-deploy "
        "--sim --mode realtime: a tick every model dt, the arm executes the newest command "
        "while the node computes)"
    ),
    "driver": lambda n: (
        f"official init states 0..{n - 1}, **simulated arm** through driver-standard ROS 2 "
        "only (para-deploy --sim --mode driver: the franka_realsense profile's /tf, "
        "/tf_static, /joint_states and compressed distorted camera; a streaming Cartesian "
        "controller on simulation time, never waiting for the node; the node's speed bound; "
        "steps are 100 Hz control steps, 20 simulated s)"
    ),
}


def _closed_loop_summary(results: Path) -> dict:
    import numpy as np

    from para_ros.core.stats import rate

    r = json.loads(results.read_text())
    eps = [e for e in r["episodes"] if e.get("outcome") in ("PLACE", "GRASP", "MISS")]
    steps = [e["steps"] for e in eps if e["outcome"] == "PLACE"]
    # in-process evaluation: inference_ms_median; the ROS bridge: inference_ms {median, ...}
    lat = [
        e.get("inference_ms_median") or (e.get("inference_ms") or {}).get("median") for e in eps
    ]
    lat = [x for x in lat if x is not None]
    ticks = {
        k: sum(e.get(k, 0) for e in eps)
        for k in ("stale_steps", "held_steps")
        if eps and k in eps[0]
    }
    return {
        **r["summary"],
        "ci95": rate(r["summary"]["PLACE"], r["summary"]["n"])["ci95"],
        "refused": sum(e.get("outcome") == "REFUSED" for e in r["episodes"]),
        "max_steps": eps[0]["setting"]["max_steps"] if eps else None,
        "steps_to_place_median": float(np.median(steps)) if steps else None,
        "inference_ms_median": float(np.median(lat)) if lat else None,
        **ticks,
    }


def card_data(cfg, outs: dict[str, dict], machine: str, matrix: Path | None = None) -> dict:
    """Everything the card shows; `matrix`: a para-eval-matrix matrix.json to include."""
    from para_training.card_tracks import ordered

    tracks = {}
    for name, o in ordered(outs).items():
        timing_file = o["dir"] / "timing.json"
        tracks[name] = {
            "setting": cfg.track(name).setting,
            "demos": _demos_summary(o["demos"]),
            "training": _training_summary(o["run"]),
            "onnx": _onnx_summary(o["onnx"], o["run"] / "best"),
            "closed_loop": _closed_loop_summary(o["results"]),
            **{
                row: _closed_loop_summary(o[row])
                for row in ROS_ROWS
                if o.get(row) and Path(o[row]).exists()
            },
            "stage_seconds": json.loads(timing_file.read_text()) if timing_file.exists() else {},
        }
    return {
        "model": "para_libero_spatial_t0",
        "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine,
        "python": sys.version.split()[0],
        "recipe": "para-train-default (make train-default)",
        "execute_step": cfg.execute_step,
        "tracks": tracks,
        **({"matrix": str(matrix)} if matrix else {}),
    }


def matrix_lines(matrix_json: Path) -> list[str]:
    """The card's held-out table from a para-eval-matrix matrix.json (its own renderer)."""
    from para_ros.sim.matrix import official_notes, table

    rows = json.loads(Path(matrix_json).read_text())["rows"]
    return [
        "## Held-out closed loop (para-eval-matrix)",
        "",
        table(rows).rstrip("\n"),
        "",
        *official_notes(rows),
        "Success with its 95% Wilson interval; N counts distinct starts (layout x setting). "
        "Viewpoint rows: the camera orbited by θ about the table point it looks at, 8 "
        "azimuths; the model was trained at the default camera only. Shift rows: the "
        "manipulated object alone moved by that distance in 8 directions. Both start from "
        "the first official init states (the matrix's --episodes per cell). Refused: starts "
        "whose shifted objects interpenetrate, refused before the first step and not counted "
        "in N.",
        "",
    ]


def _augmentation_line(data: dict) -> str:
    """The card's line for the training-sample augmentation of a DataConfig dict."""
    parts = []
    if data.get("augment_orbit_deg"):
        how = (
            "each pixel moved by the demo's depth"
            if data.get("augment_orbit_warp") == "depth"
            else "the table plane's homography"
        )
        parts.append(
            f"camera orbited about the table point it looks at by up to "
            f"{data['augment_orbit_deg']:g} deg on {data['augment_orbit_prob']:.0%} of samples "
            f"(image redrawn by {how}, labels re-projected exactly)"
        )
    if data.get("augment_rotation_deg"):
        parts.append(
            f"camera rotated about its centre by up to {data['augment_rotation_deg']:g} deg on "
            f"{data['augment_rotation_prob']:.0%} of samples (image warped by K R K^-1, labels "
            "re-projected)"
        )
    if data.get("augment_mirror_prob"):
        parts.append(
            f"mirrored on {data['augment_mirror_prob']:.0%} of samples (image flipped "
            "left-right, labels reflected across the camera's vertical plane)"
        )
    if data.get("augment_color"):
        parts.append(f"colour jitter {data['augment_color']:g}")
    return "- augmentation (training samples): " + ("; ".join(parts) if parts else "none")


OOD_NOTES = {"position": " (the seed's protocol; published PARA: 54% with a pretrained "
             "backbone on a GPU)"}  # fmt: skip


def _ood_lines(t: dict) -> list[str]:
    """The card's sentences on its position-OOD rows: which model each is, when a row was
    added to the card after the fact (and what was checked), and which row is missing."""
    from para_training.card_tracks import HALVES

    lines = []
    for name, (half, test_half) in HALVES.items():
        split, note = f"{half} -> {test_half}", OOD_NOTES.get(name, "")
        if name not in t:
            lines.append(
                f"No position-OOD ({split}) row in this card: `para-train-default --tracks "
                f"{name} --install DIR` adds one, a model of the same recipe trained on the "
                f"{half} half."
            )
            continue
        made = t[name].get("made")
        lines.append(
            f"The {split} row is another model of the same recipe, trained on the {half} half "
            f"only{note}"
            + (
                f"; it was added to this card on {made['created']} ({made['machine']}) by "
                f"`{made['command']}`, which checked that its training config, executor, max "
                "steps and recovery fraction are the in-distribution model's"
                + (
                    f" ({', '.join(made['unchecked'])}: not recorded by the card, not checked)"
                    if made.get("unchecked")
                    else ""
                )
                if made
                else ""
            )
            + "."
        )
    return [*lines, "The shipped file is the in-distribution model.", ""]


def render_markdown(c: dict) -> str:
    t = c["tracks"]
    main = t.get("in_distribution") or next(iter(t.values()))
    cfg = main["training"]["config"]
    data, model = cfg["data"], cfg["model"]
    lines = [
        "# PARA 5-layer DINO-KV, libero_spatial task 0 (`para_libero_spatial_t0`)",
        "",
        f'Task: "{main["demos"]["language"]}". Trained by this project from scratch '
        "(no pretrained DINO weights: none can be downloaded on the machines it was made on) "
        f"with `{c['recipe']}`. Created {c['created']} on {c['machine']}.",
        "",
        "## Closed loop (LIBERO, teleport servo, zero rotation)",
        "",
        f"Executor: each new frame, step {c['execute_step']} of the chunk "
        f"({data['stride'] * (c['execute_step'] + 1)} recorded frames ahead), at most 5 cm per "
        "command, StallGuard off; recorded in the model's contract (`executor`), which the "
        "node, para-eval-sim and the bridge use unless a parameter overrides it; the same "
        "commands go through ROS 2 in lock-step (`para-demo`). An episode ends at PLACE or "
        "after max steps (the expert places in ~50). Rows run in-process (para-eval-sim), "
        "except the real-time and simulated-arm rows, which run through ROS 2 (the real-time "
        "row counts steps in ticks of the model's dt).",
        "",
        "| setting | N | PLACE | GRASP | MISS | success [95% Wilson CI] | median steps to PLACE "
        "| max steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [(tk["setting"], tk["closed_loop"]) for tk in t.values()]
    for row, describe in ROS_ROWS.items():
        if row in main:
            rows.append((describe(main[row]["n"]), main[row]))
    for setting, cl in rows:
        if cl.get("refused"):
            setting += (
                f"; {cl['refused']} more starts refused before the first step (the shifted "
                "objects interpenetrate), not counted in N"
            )
        lines.append(
            f"| {setting} | {cl['n']} | {cl['PLACE']} | {cl['GRASP']} | {cl['MISS']} | "
            f"{format_rate(cl['PLACE'], cl['n'])} | {cl['steps_to_place_median'] or '–'} | "
            f"{cl['max_steps']} |"
        )
    lines += [
        "",
        *(matrix_lines(c["matrix"]) if c.get("matrix") else []),
        *_ood_lines(t),
        "## Data",
        "",
    ]
    for name, tk in t.items():
        for d in tk["demos"].get("parts", [tk["demos"]]):
            seeds = d.get("layout_seeds")
            lines.append(
                f"- {name}: {d['episodes']} successful scripted-expert demos ({d['frames']} "
                f"frames, {d['image_hw'][0]}x{d['image_hw'][1]} agentview), setting "
                f"`{d['setting']}`"
                + (f", half `{d['half']}`" if d["half"] else "")
                + (f", fresh layouts (training seeds {seeds[0]}..{seeds[1] - 1})" if seeds else "")
                + (
                    f", {d['recovery_episodes']} of them recovery demos (start after a detour "
                    "with the gripper closed on nothing)"
                    if d.get("recovery_episodes")
                    else ""
                )
            )
    lines += [
        "",
        "## Configuration",
        "",
        f"- input {data['image_height']}x{data['image_width']} RGB, grid "
        f"{data['grid_height']}x{data['grid_width']}, T={data['steps']} steps of stride "
        f"{data['stride']} frames, Z={data['height_bins']} height bins, "
        f"{data['gripper_bins']} gripper bins, rotation {data['rotation_mode']} "
        f"({data['rotation_bins']} bins)",
        _augmentation_line(data),
        f"- backbone `{model['backbone']}` architecture from timm, width "
        f"{model['vit_embed_dim']}, "
        f"depth {model['vit_depth']}, patch {model['vit_patch_size']}, random init"
        + (f" + weights {model['backbone_weights']}" if model["backbone_weights"] else ""),
        f"- head: d_feat {model['d_feat']}, d_model {model['d_model']}, {model['tf_layers']} "
        f"transformer layers, {model['refine_convs']} refine convs; start keypoint (u, v, h)"
        + (" + the gripper command being executed" if model.get("gripper_input") else ""),
        f"- training: {cfg['train']['epochs']} epochs, batch {cfg['train']['batch_size']}, "
        f"AdamW lr {cfg['train']['lr']}, weight decay {cfg['train']['weight_decay']}, "
        f"{cfg['train']['threads']} CPU thread(s) per run",
        "",
        "## Training and open-loop metrics (held-out demos)",
        "",
        "| track | epochs | train time | best epoch | val_pix (px) | height (mm) | 3D (mm) | "
        "grip acc |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, tk in t.items():
        trk = tk["training"]
        ol = trk["open_loop_best"]
        lines.append(
            f"| {name} | {trk['epochs']} | {trk['train_seconds'] / 60:.1f} min | "
            f"{trk['best_epoch']} | {ol.get('val_pix', float('nan')):.2f} | "
            f"{ol.get('val_height_mm', float('nan')):.1f} | "
            f"{ol.get('val_3d_mm', float('nan')):.1f} | "
            f"{ol.get('val_grip_acc', float('nan')):.3f} |"
        )
    ox = main["onnx"]
    lines += [
        "",
        "## ONNX",
        "",
        f"- `{ox['file']}`: {ox['size_MB']:.1f} MB fp32, opset 18, uint8 NHWC input, the "
        "PolicySpec in its metadata (`para.policy_spec`)",
        "- parity ORT CPU vs PyTorch (random inputs): "
        + ", ".join(f"{k} {v:.3g}" for k, v in ox["parity_fp32"].items()),
    ]
    if "parity_int8" in ox:
        lines.append(
            f"- int8 (dynamic) copy: {ox['int8_size_MB']:.1f} MB; "
            + ", ".join(f"{k} {v:.3g}" for k, v in ox["parity_int8"].items())
        )
    cl = main["closed_loop"]
    lines += [
        f"- closed-loop inference latency (ORT CPU, 1 thread): median "
        f"{cl['inference_ms_median']:.1f} ms"
        if cl["inference_ms_median"]
        else "",
        "",
        "## Stage times (seconds)",
        "",
    ]
    for name, tk in t.items():
        where = (tk.get("made") or {}).get("machine", c["machine"])
        lines.append(
            f"- {name} ({where}): "
            + ", ".join(f"{k} {v:.0f}" for k, v in tk["stage_seconds"].items())
        )
    lines += [
        "",
        "## Limitations",
        "",
        "- One task, one camera, simulation only. The backbone never saw data other than these "
        "demos; expect it to fail on other scenes, tasks and real images.",
        "- Rotation is not exercised (the expert keeps the start orientation; the seed protocol "
        "executes zero rotation).",
        "",
    ]
    return "\n".join(lines)


def render_installed(card: dict, dest: Path) -> str:
    """MODEL_CARD.md of a card installed in `dest` (its matrix.json named relative to it)."""
    shown = {**card, "matrix": str(dest / card["matrix"])} if card.get("matrix") else card
    return render_markdown(shown)


def write_card(cfg, outs: dict[str, dict], machine: str, matrix: Path | None = None) -> Path:
    c = card_data(cfg, outs, machine, matrix)
    (cfg.out / "card.json").write_text(json.dumps(c, indent=1))
    path = cfg.out / "MODEL_CARD.md"
    path.write_text(render_markdown(c))
    return path


def _strip_targets(results: Path, out: Path) -> None:
    r = json.loads(results.read_text())
    for e in r["episodes"]:
        e.pop("targets", None)  # per-step targets: large, and the run folder keeps them
    out.write_text(json.dumps(r, indent=1))


def install(
    cfg, outs: dict[str, dict], dest: Path, matrix: Path | None = None, machine: str = ""
) -> list[str]:
    """Copy the shipped model (in-distribution track) with its card and results to `dest`;
    `matrix`: the matrix.json whose table, JSON and PNG go along. A run without the
    in-distribution track adds its tracks to the card already in `dest` instead
    (card_tracks.add_tracks; `machine`: where they were made). Tracks of the card in `dest`
    that this run did not make are kept when they pass the recipe check against the new
    in-distribution model and dropped (with their eval_<track>.json) otherwise; returns one
    line per track kept or dropped. ValueError (nothing written) when `dest` cannot take it."""
    from para_training import card_tracks

    if "in_distribution" not in outs:
        card_tracks.add_tracks(cfg, outs, dest, machine)
        return []
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"{dest}: not a folder")
    main = outs["in_distribution"]
    card = json.loads((cfg.out / "card.json").read_text())
    if matrix is not None:  # the shipped copy next to the card, not the work folder's file
        card["matrix"] = "matrix.json"
    kept, dropped, said = card_tracks.carry_over(card, dest)
    card["tracks"] = card_tracks.ordered({**kept, **card["tracks"]})
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(main["onnx"], dest / "model.onnx")
    (dest / "card.json").write_text(json.dumps(card, indent=1))
    for name in dropped:
        (dest / f"eval_{name}.json").unlink(missing_ok=True)
    for name, o in outs.items():
        _strip_targets(o["results"], dest / f"eval_{name}.json")
        for row in ROS_ROWS:
            if o.get(row) and Path(o[row]).exists():
                _strip_targets(o[row], dest / f"eval_{name}_{row}.json")
    if matrix is not None:
        rows = json.loads(matrix.read_text())["rows"]
        for r in rows:  # per-cell results, for the tests that re-run a recorded episode
            if r["setting"] == "official":
                _strip_targets(Path(r["results"]), dest / "eval_official.json")
        shutil.copy2(matrix, dest / "matrix.json")
        for extra in ("matrix.md", "success.png"):
            if (matrix.parent / extra).exists():
                shutil.copy2(matrix.parent / extra, dest / extra)
    (dest / "MODEL_CARD.md").write_text(render_installed(card, dest))
    gif = main["dir"] / "eval" / "episode_shard0.gif"
    if gif.exists():
        shutil.copy2(gif, dest / "episode.gif")
    return said


def add_ros_row(dest: Path, row: str, results: Path, track: str = "in_distribution") -> None:
    """Add (or replace) the ROS row `row` (a ROS_ROWS name) of `track` in the card installed
    in `dest`, from a para-deploy --sim results JSON of that track's model on official init
    states 0..n-1: card.json, MODEL_CARD.md and eval_<track>_<row>.json are written whole.
    Raises ValueError for an unknown row or track, or a results file that is not complete."""
    if row not in ROS_ROWS:
        raise ValueError(f"unknown row {row!r}; expected one of {sorted(ROS_ROWS)}")
    card_path = dest / "card.json"
    card = json.loads(card_path.read_text())
    if track not in card["tracks"]:
        raise ValueError(f"{card_path} has no track {track!r}; tracks: {sorted(card['tracks'])}")
    summary = _closed_loop_summary(results)
    if not summary.get("complete"):
        raise ValueError(f"{results}: the run is not complete ({summary}): not added")
    card["tracks"][track][row] = summary
    _strip_targets(results, dest / f"eval_{track}_{row}.json")
    text = render_installed(card, dest)
    card_path.write_text(json.dumps(card, indent=1))
    (dest / "MODEL_CARD.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    """`python -m para_training.model_card add-row DEST ROW RESULTS`: see add_ros_row."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m para_training.model_card")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add-row", help="add a ROS 2 row to an installed card")
    add.add_argument("dest", type=Path, help="installed model folder (card.json)")
    add.add_argument("row", choices=sorted(ROS_ROWS))
    add.add_argument("results", type=Path, help="para-deploy --sim results JSON")
    add.add_argument("--track", default="in_distribution")
    args = ap.parse_args(argv)
    try:
        add_ros_row(args.dest, args.row, args.results, args.track)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"model_card: error: {exc}", file=sys.stderr)
        return 2
    print(f"added the {args.row} row to {args.dest / 'MODEL_CARD.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
