"""What every node executable does around its node: `--help` (`ros2 run para_ros <node>
--help`; rcl has no help of its own for a Python node, so print the node's docstring and its
parameters with defaults) and a quiet shutdown."""

from __future__ import annotations

import faulthandler
import signal
import sys
from collections.abc import Iterable


def print_help(argv: list[str], name: str, doc: str | None, params: Iterable[tuple]) -> bool:
    """Print help and return True when `-h`/`--help` comes before any `--ros-args`."""
    head = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if not {"-h", "--help"} & set(head):
        return False
    out = [f"usage: ros2 run para_ros {name} [--ros-args -p NAME:=VALUE ...]", ""]
    out += [(doc or "").strip(), "", "parameters (name, default: description):"]
    out += [f"  {n} ({default!r}): {desc}" for n, default, desc in params]
    sys.stdout.write("\n".join(out) + "\n")
    return True


def enable_stack_dumps() -> None:
    """`kill -USR1 <pid>` prints every thread's Python stack to stderr (a hung node in the
    field, or in a test, says where it hangs)."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def ignore_further_interrupts() -> None:
    """Call when shutting down: Ctrl-C in a terminal signals the whole process group, then
    `ros2 launch` forwards its own SIGINT; a second KeyboardInterrupt inside destroy_node
    would end a clean shutdown with a traceback and exit code -2 (a failure to launch)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
