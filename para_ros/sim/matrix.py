"""`para-eval-matrix`: models x settings -> closed-loop success table (markdown + JSON).

    para-eval-matrix --models a.onnx b.onnx --settings in_distribution viewpoint position \\
        --episodes 10 -o results/matrix

Settings (seed protocol): in_distribution (official init states); viewpoint (camera orbited by
--theta deg at azimuth --phi); position (object shifts: --positions-file, else the right half
of the seed's grid, --half right). Each cell is one para-eval-sim run (in-process); cells can
be spread over machines with para-eval-sim --shard and merged, then tabulated with --from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SETTINGS = ("in_distribution", "viewpoint", "position")


def cell_args(model: str, setting: str, args, out: Path) -> list[str]:
    a = [
        "--model",
        model,
        "-o",
        str(out),
        "--episodes",
        str(args.episodes),
        "--task",
        str(args.task),
        "--suite",
        args.suite,
        "--max-steps",
        str(args.max_steps),
        "--image-size",
        str(args.image_size),
    ]
    if setting == "viewpoint":
        a += ["--theta", str(args.theta), "--phi", str(args.phi)]
    elif setting == "position":
        a += (
            ["--positions-file", args.positions_file]
            if args.positions_file
            else ["--half", "right", "--grid", str(args.grid)]
        )
    if args.gif:
        a.append("--gif")
    return a


def table(cells: dict[str, dict[str, dict]], settings: list[str]) -> str:
    head = "| model | " + " | ".join(settings) + " |"
    lines = [head, "|---" * (len(settings) + 1) + "|"]
    for model, row in cells.items():
        vals = []
        for s in settings:
            c = row.get(s)
            if not c:
                vals.append("NOT MEASURED")
                continue
            vals.append(
                f"**{100 * c['success_rate']:.0f}%** (n={c['n']}; GRASP {c['GRASP']}, "
                f"MISS {c['MISS']})"
            )
        lines.append(f"| {Path(model).stem} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="para-eval-matrix",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--suite", default="libero_spatial")
    ap.add_argument("--task", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=600)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--theta", type=float, default=20.0)
    ap.add_argument("--phi", type=float, default=0.0)
    ap.add_argument("--positions-file", default="")
    ap.add_argument("--grid", type=int, default=4)
    ap.add_argument("--gif", action="store_true", help="a GIF of one episode per cell")
    ap.add_argument("-o", "--out", default="results/matrix")
    args = ap.parse_args(argv)
    from para_ros.sim.evaluate import build_parser, run

    out = Path(args.out)
    cells: dict[str, dict[str, dict]] = {}
    for model in args.models:
        if not Path(model).is_file():
            print(f"para-eval-matrix: model {model} does not exist", file=sys.stderr)
            return 2
        for setting in args.settings:
            cell_out = out / Path(model).stem / setting
            res = run(build_parser().parse_args(cell_args(model, setting, args, cell_out)))
            cells.setdefault(model, {})[setting] = res["summary"]
            print(f"{Path(model).stem} / {setting}: {res['summary']}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    md = f"# Closed-loop success, {args.suite} task {args.task}\n\n" + table(cells, args.settings)
    (out / "matrix.md").write_text(md)
    (out / "matrix.json").write_text(json.dumps(cells, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
