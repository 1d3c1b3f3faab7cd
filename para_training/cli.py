"""Command-line flags generated from config dataclasses (one flag per field, help from its
metadata), so a config and its CLI cannot drift apart."""

from __future__ import annotations

import argparse
import dataclasses
import typing


def add_dataclass_args(
    parser: argparse.ArgumentParser,
    cls: type,
    title: str,
    skip: set[str] = frozenset(),
    positional: str = "",
) -> None:
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        helptext = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.name == positional:
            group.add_argument(f.name, nargs="+", help=helptext)
        elif tp is bool:
            group.add_argument(
                f"--{f.name}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{helptext} (default: {default})",
            )
        elif typing.get_origin(tp) is list:
            group.add_argument(f"--{f.name}", nargs="+", default=None, help=helptext)
        else:
            group.add_argument(
                f"--{f.name}", type=tp, default=None, help=f"{helptext} (default: {default})"
            )


def dataclass_from_args(
    cls: type, ns: argparse.Namespace, base: dict | None = None, where: str = "preset"
):
    """Build `cls` from: its defaults < `base` (a preset) < flags given on the command line.

    A key of `base` that is not a field of `cls` is refused (ConfigKeyError naming
    `where.<key>` and the close names), never dropped."""
    from para_training.configs import check_keys

    names = {f.name for f in dataclasses.fields(cls)}
    values = dict(base or {})
    check_keys(cls, values, where)
    for name in names:
        v = getattr(ns, name, None)
        if v is not None:
            values[name] = v
    return cls(**values)
