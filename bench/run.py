"""Run benchmarks and print one JSON line per benchmark.

python -m bench.run                 # every bench/bench_*.py
python -m bench.run core training   # bench/bench_core.py, bench/bench_training.py
python -m bench.run -k lift         # only benchmarks whose name contains "lift"
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

# Stable timing on shared 2-core machines (RECIPES): no busy-waiting thread pools.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from bench.common import machine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("modules", nargs="*", help="bench_<name>.py modules (default: all)")
    ap.add_argument("-k", default="", help="substring filter on benchmark names")
    args = ap.parse_args(argv)
    here = Path(__file__).parent
    names = args.modules or sorted(p.stem[len("bench_") :] for p in here.glob("bench_*.py"))
    host = machine()
    failed = 0
    for mod_name in names:
        try:
            mod = importlib.import_module(f"bench.bench_{mod_name}")
        except ModuleNotFoundError as exc:
            print(json.dumps({"module": mod_name, "error": f"cannot import: {exc}"}))
            failed += 1
            continue
        for name, fn in mod.benchmarks():
            if args.k not in name:
                continue
            try:
                row = {"benchmark": f"{mod_name}.{name}", **fn(), "machine": host}
            except Exception as exc:  # report and go on: one broken benchmark hides no others
                row = {"benchmark": f"{mod_name}.{name}", "error": f"{type(exc).__name__}: {exc}"}
                failed += 1
            print(json.dumps(row), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
