"""The tracks of one model card: a position-OOD track (left -> right, near -> far) measured by
its own `para-train-default --tracks position|near --install DIR` run joins the card in DIR
only when it is a model of that card's recipe; a full re-install keeps the rows that still
are and drops the others.

"The same recipe" is checked on what the run's own files record, never on what the command
line says it asked for:
  - the training config (train_config.json), section by section, but for TRACK_OWN_KEYS; a
    key one side lacks or leaves None is compared as its config class's default (a card made
    before a field existed was made with that default);
  - the executor step in the track's ONNX contract (`executor.execute_step`);
  - the closed loop's max steps (the results file);
  - the recovery fraction each demo part was made with (the demo files' env_args), where the
    card records it (cards made before 2026-12-07 do not: then it is listed as unchecked).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

TRACK_ORDER = ("in_distribution", "position", "near")
# the position-OOD tracks: (the half of the seed's shift grid trained on, the half tested on)
HALVES = {"position": ("left", "right"), "near": ("near", "far")}

# Training-config entries that differ between the tracks of one recipe: the track's own data
# files, the statistics drawn from them, where the run was written, and how it was run.
TRACK_OWN_KEYS = frozenset(
    {
        "data.data",
        "data.rotation_basis",
        "model.height_min",
        "model.height_max",
        "train.output_dir",
        "train.run_name",
        "train.threads",
        "train.device",
        "train.num_workers",
        "train.resume_from",
        "train.progress",
        "train.save_every_epochs",
        "train.vis_every_epochs",
    }
)


def ordered(tracks: dict) -> dict:
    """`tracks` in the card's order: in_distribution, position, near."""
    return {k: tracks[k] for k in sorted(tracks, key=TRACK_ORDER.index)}


def config_defaults(config: dict) -> dict:
    """The defaults of a train_config.json's sections (data, model, train) from their config
    classes (the model's by its `architecture`); fields without a default are left out."""
    from para_training.configs import DataConfig, TrainConfig
    from para_training.policies.registry import lookup

    def defaults(cls) -> dict:
        out = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        return out

    model_cls = lookup(config["architecture"]).config_cls if "architecture" in config else None
    return {
        "data": defaults(DataConfig),
        "train": defaults(TrainConfig),
        **({"model": defaults(model_cls)} if model_cls else {}),
    }


def _same(a, b) -> bool:
    nan = isinstance(a, float) and isinstance(b, float) and a != a and b != b
    return nan or a == b


def recipe_differences(
    card_cfg: dict, track_cfg: dict, defaults: dict | None = None, path: str = ""
) -> list[str]:
    """The training-config entries (dotted key paths) in which a track's run differs from the
    card's recipe, ignoring TRACK_OWN_KEYS. A key one side lacks or leaves None is compared as
    `defaults` has it (config_defaults of the card's config when not given). Empty: the same
    recipe."""
    if defaults is None:
        defaults = config_defaults(card_cfg)
    out = []
    for k in sorted(set(card_cfg) | set(track_cfg)):
        key = f"{path}{k}"
        if key in TRACK_OWN_KEYS:
            continue
        a, b = card_cfg.get(k), track_cfg.get(k)
        a = defaults.get(k) if a is None else a
        b = defaults.get(k) if b is None else b
        if isinstance(a, dict) and isinstance(b, dict):
            sub = defaults.get(k) if isinstance(defaults.get(k), dict) else {}
            out += recipe_differences(a, b, sub, key + ".")
        elif not _same(a, b):
            out.append(f"{key}: {a!r} in the card, {b!r} in this run")
    return out


def _recoveries(track: dict) -> set | None:
    """The recovery fractions of a track's demo parts; None when a part did not record it."""
    values = [p.get("recovery") for p in track["demos"].get("parts", [])]
    return None if not values or None in values else set(values)


def track_mismatches(card: dict, name: str, track: dict) -> tuple[list[str], list[str]]:
    """(what differs between `track` and the card's in-distribution model, what could not be
    checked because the card does not record it)."""
    ref = card["tracks"]["in_distribution"]
    out = [
        f"training config {d}"
        for d in recipe_differences(ref["training"]["config"], track["training"]["config"])
    ]
    step = track["onnx"].get("execute_step")
    if step is not None and step != card["execute_step"]:
        out.append(
            f"execute step {card['execute_step']} in the card, {step} in this run's model "
            "contract (its rows ran another executor)"
        )
    ms_card, ms = ref["closed_loop"]["max_steps"], track["closed_loop"]["max_steps"]
    if ms_card != ms:
        out.append(f"max steps {ms_card} in the card, {ms} in this run")
    unchecked = []
    rec_card, rec = _recoveries(ref), _recoveries(track)
    if rec_card is None:
        unchecked.append("recovery fraction")
    elif rec != rec_card:
        out.append(f"recovery fraction {sorted(rec_card)} in the card, {sorted(rec or [])} here")
    return out, unchecked


def read_card(dest: Path) -> dict:
    """The card installed in `dest`, checked to be one tracks can join: a folder with a
    card.json that has the in-distribution track and, when it names one, its matrix.json.
    ValueError naming what is missing otherwise."""
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"{dest}: not a folder (expected a model folder with card.json)")
    card_file = dest / "card.json"
    if not card_file.is_file():
        raise ValueError(
            f"{card_file}: no card to add tracks to; install the in_distribution track first "
            "(para-train-default --install DIR)"
        )
    card = json.loads(card_file.read_text())
    if "in_distribution" not in card.get("tracks", {}):
        raise ValueError(
            f"{card_file} has no in_distribution track (it has {sorted(card.get('tracks', {}))})"
            ": tracks join the card of an installed model"
        )
    if card.get("matrix") and not (dest / card["matrix"]).is_file():
        raise ValueError(f"{card_file} names {card['matrix']}, which is not in {dest}")
    return card


def precheck_add(cfg, dest: Path) -> None:
    """Before any stage runs: refuse (ValueError) an add whose destination cannot take it or
    whose command line already differs from the card (execute step, max steps, recovery
    fraction), so that hours of demos and training are not spent on a refused row."""
    card = read_card(dest)
    ref = card["tracks"]["in_distribution"]
    wrong = []
    if cfg.execute_step != card["execute_step"]:
        wrong.append(f"--execute-step {cfg.execute_step} (the card: {card['execute_step']})")
    if cfg.max_steps != ref["closed_loop"]["max_steps"]:
        wrong.append(f"--max-steps {cfg.max_steps} (the card: {ref['closed_loop']['max_steps']})")
    rec = _recoveries(ref)
    if rec is not None and rec != {cfg.recovery}:
        wrong.append(f"--recovery {cfg.recovery} (the card: {sorted(rec)})")
    if wrong:
        raise ValueError(f"{dest / 'card.json'} was made with another recipe: " + "; ".join(wrong))


def add_tracks(cfg, outs: dict[str, dict], dest: Path, machine: str) -> None:
    """Add the position / near tracks of a run to the card installed in `dest`: their rows,
    data, training and stage times, each stamped with when, where and by which command it was
    made; the results go along as eval_<track>.json. ValueError, and nothing written, when
    `dest` cannot take them (read_card) or a track is not a model of the card's recipe
    (track_mismatches)."""
    from para_training.model_card import _strip_targets, card_data, render_installed

    card = read_card(dest)
    new = card_data(cfg, outs, machine)
    names = " ".join(n for n in TRACK_ORDER if n in outs)
    for name, track in new["tracks"].items():
        wrong, unchecked = track_mismatches(card, name, track)
        if wrong:
            raise ValueError(
                f"track {name!r} is not a model of the recipe of {dest / 'card.json'}: "
                + "; ".join(wrong)
            )
        track["made"] = {
            "created": new["created"],
            "machine": machine,
            "command": f"para-train-default --tracks {names} --install",
            "unchecked": unchecked,
        }
    card["tracks"] = ordered({**card["tracks"], **new["tracks"]})
    markdown = render_installed(card, dest)  # everything computed before the first write
    stripped = {}
    for name, o in outs.items():
        tmp = dest / f".eval_{name}.json.tmp"
        _strip_targets(o["results"], tmp)
        stripped[name] = tmp
    (dest / ".card.json.tmp").write_text(json.dumps(card, indent=1))
    (dest / ".MODEL_CARD.md.tmp").write_text(markdown)
    for name, tmp in stripped.items():  # each file replaced whole
        tmp.replace(dest / f"eval_{name}.json")
    (dest / ".card.json.tmp").replace(dest / "card.json")
    (dest / ".MODEL_CARD.md.tmp").replace(dest / "MODEL_CARD.md")


def carry_over(card: dict, dest: Path) -> tuple[dict, list[str], list[str]]:
    """For a full install of `card` (a new in-distribution model) into `dest`: the tracks of
    the card already there that this card lacks, split into those still of its recipe (kept,
    stamped with where they were made) and those not (dropped); and one line on each."""
    old_file = dest / "card.json"
    if not old_file.is_file():
        return {}, [], []
    old = json.loads(old_file.read_text())
    kept, dropped, said = {}, [], []
    for name, track in old.get("tracks", {}).items():
        if name in card["tracks"]:
            continue
        wrong, unchecked = track_mismatches(card, name, track)
        if wrong:
            dropped.append(name)
            said.append(f"dropped the {name} row of the earlier card: " + "; ".join(wrong))
            continue
        made = track.get("made") or {
            "created": old.get("created", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
            "machine": old.get("machine", ""),
            "command": "para-train-default (an earlier install)",
            "unchecked": unchecked,
        }
        kept[name] = {**track, "made": made}
        said.append(f"kept the {name} row of the earlier card (same recipe)")
    return kept, dropped, said
