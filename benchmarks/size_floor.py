"""The floor under an int8 artifact's size (issue 12): the bytes no file format can drop,
read from a built .tflite (its buffers are the model's integers, each written once): int8 /
int16 constants, int32 constants (biases: as many bytes as their float32 originals), other
constants (shapes, indices, tables), and the float32 scales a runtime needs (per-channel weight
and bias scales, one per activation), each distinct vector counted once. Zero points are left
out (symmetric weights could do without them). Everything above the floor is file structure:
tables, offsets, names, alignment.

    python benchmarks/size_floor.py FLOAT_WEIGHT_BYTES model.tflite
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgeq.targets.tflite.schema import NUMPY_OF_TYPE, read_model


def floor(path: Path) -> dict[str, int]:
    model = read_model(path.read_bytes())
    meta = {int(m.buffer) for m in model.metadata or []}
    seen_buffers: set[int] = set()
    seen_scales: set[bytes] = set()
    out = {"int8/int16 constants": 0, "int32 constants": 0, "other constants": 0, "scales": 0}
    for sg in model.subgraphs:
        for t in sg.tensors:
            b = int(t.buffer)
            data = model.buffers[b].data
            if b and b not in meta and b not in seen_buffers and data is not None and len(data):
                seen_buffers.add(b)
                kind = np.dtype(NUMPY_OF_TYPE[t.type])
                key = ("int8/int16 constants" if kind in (np.int8, np.int16)
                       else "int32 constants" if kind == np.int32 else "other constants")
                out[key] += len(data)
            q = t.quantization
            if q is not None and q.scale is not None and len(q.scale):
                s = np.asarray(q.scale, np.float32).tobytes()
                if s not in seen_scales:
                    seen_scales.add(s)
                    out["scales"] += len(s)
    out["floor"] = sum(out.values())
    out["file"] = path.stat().st_size
    return out


def main(float_bytes: int, path: str) -> None:
    f = floor(Path(path))
    print(path, " ".join(f"{k}={v} ({v / float_bytes:.3f}x)" for k, v in f.items()))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
