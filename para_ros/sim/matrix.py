"""`para-eval-matrix`: the card's closed-loop table, models x settings, every cell with N and
its 95% Wilson interval: markdown (one line per cell, and models x cells), JSON, and PNGs of
the models x cells table and of success against θ and shift distance.

    para-eval-matrix --models model.onnx --episodes 10 -o results/matrix \\
        --split-models right=left_half.onnx far=near_half.onnx
    # or in shards (processes side by side), then joined:
    para-eval-matrix ... --shard 0 --num-shards 2 &  para-eval-matrix ... --shard 1 --num-shards 2
    para-eval-matrix merge results/matrix/matrix_shard*of2.json -o results/matrix
    # separate complete runs (other models, other settings) into one table:
    para-eval-matrix join results/a/matrix.json results/b/matrix.json -o results/matrix

Settings (rows; each is one in-process para-eval-sim run per cell):
  official   the official init states --first-init .. + --episodes (the note says whether
             --train-demos started from them)
  fresh      --episodes fresh layouts from the task's sampler (evaluation seed range)
  viewpoint  for each θ of --thetas (deg): --episodes official init states x --azimuths
             azimuths evenly over 360 deg (camera orbited about the table point it looks at)
  position   for each half of --halves (right: the seed's left->right split; far: near->far),
             --episodes init states x the half's --grid shifts; --split-models HALF=ONNX runs
             that row with the model trained on the other half
  shift      for each distance of --shifts-cm: the manipulated object moved by it in
             --shift-directions directions; shifts that make objects interpenetrate are
             refused and counted apart (not in N)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from para_ros.core.stats import format_rate
from para_ros.sim.libero_sim import MAX_STEPS

SETTINGS = ("official", "fresh", "viewpoint", "position", "shift")


def cell_runs(args) -> list[dict]:
    """Every row of the table before models: setting, label, x (θ deg or shift cm, else
    None) and the para-eval-sim arguments of the row's run."""
    rows = []
    for setting in args.settings:
        if setting == "official":
            n = args.official_episodes or args.episodes
            a = ["--episodes", str(n)]  # after the common --episodes: this one wins
            rows.append({"setting": setting, "label": "official init states", "x": 0.0, "a": a})
        elif setting == "fresh":
            a = ["--layouts", "fresh", "--layout-seed-start", str(args.layout_seed_start)]
            rows.append({"setting": setting, "label": "fresh layouts", "x": None, "a": a})
        elif setting == "viewpoint":
            for t in args.thetas:
                a = ["--theta", str(t), "--azimuths", str(args.azimuths)]
                label = f"θ = {t:g}° x {args.azimuths} azimuths"
                rows.append({"setting": setting, "label": label, "x": float(t), "a": a})
        elif setting == "position":
            for half in args.halves:
                a = ["--half", half, "--grid", str(args.grid)]
                rows.append({"setting": setting, "label": f"half {half}", "x": None, "a": a})
        elif setting == "shift":
            for d in args.shifts_cm:
                rows.append(
                    {"setting": setting, "label": f"shift {d:g} cm", "x": float(d), "d": d}
                )
    return rows


def write_shifts(path: Path, dist_cm: float, directions: int) -> Path:
    """A positions file: `directions` shifts of `dist_cm` evenly over 360 deg ("dx dy", m)."""
    lines = [f"# {dist_cm:g} cm in {directions} directions: dx dy (m)"]
    for k in range(directions):
        a = 2 * math.pi * k / directions
        lines.append(f"{dist_cm / 100 * math.cos(a):.6f} {dist_cm / 100 * math.sin(a):.6f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def table(rows: list[dict]) -> str:
    """Markdown: one line per (model, cell) with N, outcomes and the 95% Wilson interval."""
    lines = [
        "| model | setting | cell | N | PLACE | GRASP | MISS | refused | success [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["summary"]
        lines.append(
            f"| {r['model']} | {r['setting']} | {r['label']} | {s['n']} | {s['PLACE']} | "
            f"{s['GRASP']} | {s['MISS']} | {r['refused']} | {format_rate(s['PLACE'], s['n'])} |"
        )
    return "\n".join(lines) + "\n"


def _grid(rows: list[dict]) -> tuple[list[str], list[str], dict]:
    """Models and cell labels in the rows' order, and each (model, label)'s summary."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    return models, labels, {(r["model"], r["label"]): r["summary"] for r in rows}


def pivot(rows: list[dict]) -> str:
    """Markdown, one line per model and one column per cell (label), in the rows' order; a
    cell that model was not run on reads "not run"."""
    models, labels, got = _grid(rows)
    lines = ["| model | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for m in models:
        cells = [
            format_rate(got[m, c]["PLACE"], got[m, c]["n"]) if (m, c) in got else "not run"
            for c in labels
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_table(rows: list[dict], path: Path) -> Path:
    """PNG of `pivot`: models x cells coloured by success rate, each cell annotated with
    PLACE/N, the rate and its 95% Wilson interval; cells not run are grey and say so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models, labels, got = _grid(rows)
    rate = np.full((len(models), len(labels)), np.nan)  # (models, cells) success in [0, 1]
    fig, ax = plt.subplots(figsize=(2.2 + 2.1 * len(labels), 0.9 + 0.6 * len(models)))
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="0.85")
    for i, m in enumerate(models):
        for j, c in enumerate(labels):
            s = got.get((m, c))
            if s is None or s["n"] == 0:
                text = "not run"
            else:
                rate[i, j] = s["PLACE"] / s["n"]
                text = format_rate(s["PLACE"], s["n"]).replace(" [", "\n[")
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.imshow(np.ma.masked_invalid(rate), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set_title("closed-loop success (PLACE / N), 95% Wilson interval", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot(rows: list[dict], path: Path) -> Path | None:
    """PNG: success (with its 95% interval) against θ and against shift distance, one line
    per model; the official init states are the 0 point of both. None when no such rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("viewpoint", "camera orbit θ (deg)"), ("shift", "object shift (cm)")]
    if not any(r["setting"] in ("viewpoint", "shift") for r in rows):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (setting, xlabel) in zip(axes, panels, strict=True):
        for model in dict.fromkeys(r["model"] for r in rows):
            pts = sorted(
                (r["x"], r["summary"])
                for r in rows
                if r["model"] == model and r["setting"] in (setting, "official")
            )
            if not any(r["setting"] == setting for r in rows if r["model"] == model):
                continue
            x = [p[0] for p in pts]
            y = [100 * p[1]["success_rate"] for p in pts]
            err = [
                [100 * (p[1]["success_rate"] - p[1]["ci95"][0]) for p in pts],
                [100 * (p[1]["ci95"][1] - p[1]["success_rate"]) for p in pts],
            ]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=model)
            for xi, yi, p in zip(x, y, pts, strict=True):
                ax.annotate(
                    f"n={p[1]['n']}",
                    (xi, yi),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success (%), 95% Wilson interval")
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:  # e.g. a table with viewpoint rows only: say so instead of an empty frame
            ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="para-eval-matrix",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    ap.add_argument("--episodes", type=int, default=10, help="starts per cell")
    ap.add_argument(
        "--official-episodes",
        type=int,
        default=0,
        help="official row: init states --first-init.. (0 = --episodes)",
    )
    ap.add_argument("--first-init", type=int, default=0)
    ap.add_argument("--suite", default="libero_spatial")
    ap.add_argument("--task", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=MAX_STEPS, help="policy steps per episode")
    ap.add_argument(
        "--image-size", type=int, default=0, help="square render size, px (0: each model's input)"
    )
    ap.add_argument("--thetas", nargs="+", type=float, default=[5, 10, 15, 20, 25])
    ap.add_argument("--azimuths", type=int, default=8)
    ap.add_argument("--halves", nargs="+", default=["right", "far"])
    ap.add_argument("--grid", type=int, default=4, help="position: grid per axis")
    ap.add_argument(
        "--split-models",
        nargs="*",
        default=[],
        help="HALF=ONNX: the position row of HALF runs this model (trained on the other half)",
    )
    ap.add_argument("--shifts-cm", nargs="+", type=float, default=[3, 6, 10])
    ap.add_argument("--shift-directions", type=int, default=8)
    ap.add_argument("--layout-seed-start", type=int, default=1_000_000)
    ap.add_argument("--train-demos", nargs="*", default=[], help="see para-eval-sim")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gif", action="store_true", help="a GIF of one episode per cell")
    ap.add_argument("--shard", type=int, default=0, help="run every n-th start of each cell")
    ap.add_argument("--num-shards", type=int, default=1)
    ap.add_argument("-o", "--out", default="results/matrix")
    return ap


def official_notes(rows: list[dict]) -> list[str]:
    """One line per official row: whether the training demos started from those states."""
    out = []
    for r in (r for r in rows if r["setting"] == "official"):
        rep = r.get("layout_report") or {}
        out.append(
            f"Official init states ({r['model']}): "
            + (
                f"training demos started from {len(rep['seen_in_training'])} of them "
                f"(within {rep['tolerance_mm']} mm)."
                if rep.get("training_checked")
                else "not checked against the training demos (no --train-demos)."
            )
        )
    return out


def write_table(rows: list[dict], args: dict, out: Path) -> str:
    """matrix.md, matrix.json, table.png and success.png of complete rows (one shard or
    merged)."""
    out.mkdir(parents=True, exist_ok=True)
    md = f"# Closed-loop success, {args['suite']} task {args['task']}\n\n" + pivot(rows)
    md += f"\n![models x cells]({plot_table(rows, out / 'table.png').name})\n\n" + table(rows)
    md += "".join(f"\n{line}" for line in official_notes(rows))
    png = plot(rows, out / "success.png")
    if png:
        md += f"\n\n![success against θ and shift]({png.name})\n"
    (out / "matrix.md").write_text(md)
    (out / "matrix.json").write_text(json.dumps({"rows": rows, "args": args}, indent=1))
    return md


def merge_shards(paths: list[Path], out: Path) -> str:
    """Join `matrix_shard<i>of<n>.json` files: each cell's shard results merged with
    para-eval-sim's merge (every shard present, no start twice), then the table written."""
    from para_ros.sim.evaluate import merge

    parts = [json.loads(Path(p).read_text()) for p in paths]
    n = parts[0]["args"]["num_shards"]
    got = sorted(p["args"]["shard"] for p in parts)
    if got != list(range(n)) or any(p["args"]["num_shards"] != n for p in parts):
        raise ValueError(f"merge needs shards 0..{n - 1} of {n}, got {got}")
    rows = []
    for k, first in enumerate(parts[0]["rows"]):
        cells = [p["rows"][k] for p in parts]
        if any((c["model"], c["label"]) != (first["model"], first["label"]) for c in cells):
            raise ValueError(f"shards disagree on row {k} ({first['model']}, {first['label']})")
        merged_path = Path(first["results"]).with_name("results.json")
        m = merge([Path(c["results"]) for c in cells], merged_path)
        rows.append(
            {
                **first,
                "summary": m["summary"],
                "refused": sum(e.get("outcome") == "REFUSED" for e in m["episodes"]),
                "results": str(merged_path),
            }
        )
    args = {**parts[0]["args"], "shard": 0, "num_shards": 1, "merged_shards": n}
    return write_table(rows, args, out)


JOIN_KEYS = ("suite", "task", "max_steps", "image_size", "seed")


def join_tables(paths: list[Path], out: Path) -> str:
    """One table from complete matrix.json files of separate runs (other models or settings):
    their rows in order. Refused: runs that differ in suite, task, max steps, image size or
    seed (their cells would not be comparable), and the same (model, cell) twice."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    if not parts:
        raise ValueError("join needs at least one matrix.json")
    ref = {k: parts[0]["args"].get(k) for k in JOIN_KEYS}
    rows, seen = [], set()
    for path, part in zip(paths, parts, strict=True):
        got = {k: part["args"].get(k) for k in JOIN_KEYS}
        if got != ref:
            diff = {k: (ref[k], got[k]) for k in JOIN_KEYS if ref[k] != got[k]}
            raise ValueError(f"{path} was run with other settings than {paths[0]}: {diff}")
        if part["args"].get("num_shards", 1) != 1:
            raise ValueError(f"{path} is one shard; merge its shards first")
        for r in part["rows"]:
            key = (r["model"], r["label"])
            if key in seen:
                raise ValueError(f"{path}: {key[0]} / {key[1]} is already in another file")
            seen.add(key)
            rows.append(r)
    return write_table(rows, {**ref, "joined": [str(p) for p in paths]}, out)


def _replace_table(md: str, header: str, new: str, page: Path) -> str:
    """md with the table whose first line starts with `header` replaced by `new`."""
    lines = md.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(header)), None)
    if start is None:
        raise ValueError(f"{page} has no table starting {header!r}")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join(lines[:start]) + new + "".join(lines[end:])


def update_page(paths: list[Path], out: Path) -> str:
    """Rewrite the two tables of a hand-written page (docs/matrix.md) from one matrix.json, so
    that the page never holds a hand-edited table: its table starting "| model | <first cell
    label> |" becomes `pivot` and its table starting "| model | setting |" becomes `table`;
    the prose is kept. Errors: not exactly one JSON, or a page without those tables."""
    if len(paths) != 1:
        raise ValueError(f"page takes one matrix.json, got {len(paths)}")
    rows = json.loads(paths[0].read_text())["rows"]
    first_label = _grid(rows)[1][0]
    md = _replace_table(out.read_text(), f"| model | {first_label} |", pivot(rows), out)
    md = _replace_table(md, "| model | setting |", table(rows), out)
    out.write_text(md)
    return md


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # subcommands over finished files: name -> (files' help, function(paths, out))
    tools = {
        "join": ("matrix.json files of complete runs", join_tables),
        "merge": ("matrix_shard<i>of<n>.json files", merge_shards),
        "page": ("the matrix.json whose tables -o's page (a markdown file) shows", update_page),
    }
    if argv[:1] and argv[0] in tools:
        help_, fn = tools[argv[0]]
        ap = argparse.ArgumentParser(prog=f"para-eval-matrix {argv[0]}")
        ap.add_argument("files", nargs="+", help=help_)
        ap.add_argument("-o", "--out", required=True)
        a = ap.parse_args(argv[1:])
        try:
            print(fn([Path(p) for p in a.files], Path(a.out)))
        except (ValueError, KeyError, FileNotFoundError) as exc:
            print(f"para-eval-matrix {argv[0]}: {exc}", file=sys.stderr)
            return 2
        return 0
    args = build_parser().parse_args(argv)
    if not 0 <= args.shard < args.num_shards:
        print(f"para-eval-matrix: --shard must be in [0, {args.num_shards})", file=sys.stderr)
        return 2
    from para_ros.sim.evaluate import build_parser as eval_parser
    from para_ros.sim.evaluate import run
    from para_ros.sim.layouts import LayoutError
    from para_ros.sim.libero_sim import SimError

    bad = [s for s in args.split_models if "=" not in s or s.split("=")[0] not in args.halves]
    if bad:
        print(
            f"para-eval-matrix: --split-models wants HALF=ONNX with HALF in --halves "
            f"{args.halves}, got {bad[0]!r}",
            file=sys.stderr,
        )
        return 2
    split = dict(s.split("=", 1) for s in args.split_models)
    out = Path(args.out)
    models = [*args.models, *split.values()]
    missing = [m for m in models if not Path(m).is_file()]
    if missing:
        print(f"para-eval-matrix: model {missing[0]} does not exist", file=sys.stderr)
        return 2
    common = [
        "--episodes", str(args.episodes), "--first-init", str(args.first_init),
        "--task", str(args.task), "--suite", args.suite, "--max-steps", str(args.max_steps),
        "--image-size", str(args.image_size), "--seed", str(args.seed),
        "--shard", str(args.shard), "--num-shards", str(args.num_shards),
    ]  # fmt: skip
    if args.train_demos:
        common += ["--train-demos", *args.train_demos]
    rows = []
    for model in args.models:
        for k, cell in enumerate(cell_runs(args)):
            m = model
            if cell["setting"] == "position":
                m = split.get(cell["a"][1], model)
            cell_out = out / Path(m).stem / f"{k:02d}_{cell['setting']}"
            a = list(cell.get("a", []))
            if cell["setting"] == "shift":
                pos = write_shifts(cell_out / "positions.txt", cell["d"], args.shift_directions)
                a = ["--positions-file", str(pos)]
            a += ["--gif"] if args.gif else []
            try:
                res = run(
                    eval_parser().parse_args(["--model", m, "-o", str(cell_out), *common, *a])
                )
            except (SimError, LayoutError) as exc:
                print(f"para-eval-matrix: {cell['label']}: {exc}", file=sys.stderr)
                return 2
            row = {
                "model": Path(m).stem,
                "model_path": m,
                "setting": cell["setting"],
                "label": cell["label"],
                "x": cell["x"],
                "summary": res["summary"],
                "refused": sum(e.get("outcome") == "REFUSED" for e in res["episodes"]),
                "layout_report": res.get("layout_report"),
                "results": str(cell_out / f"results_shard{args.shard}of{args.num_shards}.json"),
            }
            rows.append(row)
            s = res["summary"]
            print(
                f"{row['model']} / {row['label']}: {format_rate(s['PLACE'], s['n'])}", flush=True
            )
    if args.num_shards > 1:  # one shard is not the table: `para-eval-matrix merge` makes it
        out.mkdir(parents=True, exist_ok=True)
        shard = out / f"matrix_shard{args.shard}of{args.num_shards}.json"
        shard.write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=1))
        print(f"wrote {shard}; join the shards with para-eval-matrix merge")
        return 0
    print(write_table(rows, vars(args), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
