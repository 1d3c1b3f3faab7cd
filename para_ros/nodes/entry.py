"""What every node executable does around its node: `--help` (`ros2 run para_ros <node>
--help`; rcl has no help of its own for a Python node, so print the node's docstring and its
parameters with defaults) and a quiet shutdown."""

from __future__ import annotations

import faulthandler
import signal
import sys
from collections.abc import Callable, Iterable


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


def spin_until_shutdown(
    spin_once: Callable[[], None], ok: Callable[[], bool], more: Callable[[], bool] = lambda: True
) -> None:
    """Call `spin_once` (one bounded wait of an executor) while the ROS context is `ok()` and
    `more()` holds.

    A SIGINT or SIGTERM that shuts the context down between `ok()` and the wait makes rcl
    refuse the wait set (RCLError "the given context is not valid"): that is a shutdown, not
    a failure, and ends the loop quietly. Seen under load as the policy node exiting with code
    1 and a traceback when `para-deploy` stopped it at the end of an episode. An RCLError while
    the context is still ok is re-raised.
    """
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

    while ok() and more():
        try:
            spin_once()
        except _rclpy.RCLError:
            if ok():
                raise
            return
