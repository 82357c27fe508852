"""Where the bytes of an .onnx file go (issue 12): initializer payload by kind (int8 weights,
int32 biases, float scales, zero points, int64 shape constants), the names, the nodes, value_info,
doc strings, opset imports and metadata, over the main graph and every subgraph (Scan bodies).

    python benchmarks/onnx_size.py model.onnx [more.onnx ...]
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import onnx
from onnx import numpy_helper


def _kind(t: onnx.TensorProto, scale_names: set[str], zp_names: set[str]) -> str:
    a = numpy_helper.to_array(t)
    if t.name in zp_names:
        return "zero points"
    if t.name in scale_names:
        return "scales (float)"
    if a.dtype.kind == "i" and a.dtype.itemsize == 1:
        return "int8 weights"
    if a.dtype.kind == "i" and a.dtype.itemsize == 2:
        return "int16 weights"
    if a.dtype.name == "int32":
        return "int32 (biases)"
    if a.dtype.name == "int64":
        return "int64 (shapes, axes, indices)"
    return f"{a.dtype.name} other"


def _graphs(g: onnx.GraphProto):
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(a.g)


def breakdown(path: Path) -> dict[str, int]:
    """Bytes (serialised, tags and lengths included) per part of the model."""
    m = onnx.load(str(path))
    out: Counter = Counter()
    out["file"] = path.stat().st_size
    counts: Counter = Counter()
    for g in _graphs(m.graph):
        scales = {n.input[1] for n in g.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                  and len(n.input) > 1}
        zps = {n.input[2] for n in g.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
               and len(n.input) > 2}
        for t in g.initializer:
            k = _kind(t, scales, zps)
            out[f"init: {k}"] += t.ByteSize()
            out[f"init payload: {k}"] += len(t.raw_data) or numpy_helper.to_array(t).nbytes
            counts[k] += 1
            out["names: initializers"] += len(t.name)
        counts["nodes"] += len(g.node)
        counts["value_info"] += len(g.value_info)
        for n in g.node:
            out["nodes (excl. subgraphs)"] += n.ByteSize() - sum(a.g.ByteSize() for a in n.attribute
                                                                 if a.type == onnx.AttributeProto.GRAPH)
            out["names: nodes"] += len(n.name)
            out["names: node inputs/outputs"] += sum(map(len, n.input)) + sum(map(len, n.output))
            out["doc strings"] += len(n.doc_string)
        out["value_info"] += sum(v.ByteSize() for v in g.value_info)
        out["graph inputs/outputs"] += sum(v.ByteSize() for v in (*g.input, *g.output))
        out["doc strings"] += len(g.doc_string)
    out["doc strings"] += len(m.doc_string)
    out["opset imports"] = sum(o.ByteSize() for o in m.opset_import)
    out["metadata props"] = sum(p.ByteSize() for p in m.metadata_props)
    for k, v in counts.items():
        out[f"count: {k}"] = v
    return dict(out)


def main(paths: list[str]) -> None:
    for p in paths:
        print(p)
        for k, v in sorted(breakdown(Path(p)).items()):
            print(f"  {k:40s} {v:9d}")


if __name__ == "__main__":
    main(sys.argv[1:])
