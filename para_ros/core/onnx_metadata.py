"""Read and write the PolicySpec in an ONNX file's `metadata_props` (key `para.policy_spec`).

The deployed model describes itself: no sidecar file is needed. Writing needs the `onnx`
package; reading works from a path (parsing only the model header, never external data) or
from an ONNX Runtime session's custom metadata map.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from para_ros.core.contract import PolicySpec, SpecError

METADATA_KEY = "para.policy_spec"


def spec_from_metadata(metadata: Mapping[str, str], source: str = "model") -> PolicySpec:
    """Parse the spec from a metadata map (ORT `get_modelmeta().custom_metadata_map`)."""
    if METADATA_KEY not in metadata:
        raise SpecError(
            f"{source}: no `{METADATA_KEY}` in the ONNX metadata (keys: {sorted(metadata)}); "
            "export the model with `para-export`, which embeds the PolicySpec"
        )
    return PolicySpec.from_json(metadata[METADATA_KEY])


def attach_spec(model: Any, spec: PolicySpec) -> Any:
    """Set `para.policy_spec` on an `onnx.ModelProto` (replacing an older value); returns it."""
    for prop in list(model.metadata_props):
        if prop.key == METADATA_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = spec.to_json(indent=None)
    return model


def write_spec(path: str | Path, spec: PolicySpec) -> None:
    """Embed `spec` into the ONNX file at `path` (rewritten in place, atomically)."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    attach_spec(model, spec)
    tmp = path.with_suffix(path.suffix + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)


def read_spec(path: str | Path) -> PolicySpec:
    """Read and validate the PolicySpec of the ONNX file at `path`."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise SpecError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from exc
    meta = {p.key: p.value for p in model.metadata_props}
    return spec_from_metadata(meta, source=str(path))
