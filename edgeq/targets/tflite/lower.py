"""Lower a quantized NHWC edgeq graph to a TFLite model (ModelT of the generated schema).

Every IR tensor keeps its name, shape (batch 1), int8 quantization and, for constants, its
data; every node becomes a builtin operator whose int8 kernel computes exactly what the node's
integer reference computes, plus glue operators where TFLite needs them:

* ``linear`` becomes a 1x1 CONV_2D on a [1, 1, M, K] view (RESHAPEs around it, dropped between
  consecutive linears): LiteRT's reference FULLY_CONNECTED requantizes in double precision
  (round(acc * s_in * s_w / s_out), LiteRT#8567) while TFLite Micro and every other reference
  int8 kernel use MultiplyByQuantizedMultiplier, so no FULLY_CONNECTED is bit-exact in both.
  ``linear_op="fully_connected"`` (target profile table ``[tflite]``) writes the native op;
* PAD / PADV2 before a convolution or max pool whose explicit padding is neither TFLite's SAME
  nor VALID (PAD fills with the zero point = a zero contribution; PADV2 fills max pools with
  -128, the identity of max);
* MAXIMUM / MINIMUM for clamps that are no fused activation TFLite knows (RELU, RELU6,
  RELU_N1_TO_1), and QUANTIZE (int8 -> int8 requantization) in front of them when the clamp
  changes the quantization;
* TRANSPOSE around SOFTMAX / LOG_SOFTMAX over another axis than the last, TRANSPOSE / RESHAPE
  around a MEAN over more than two axes (TFLite Micro reduces at most two), RESHAPE after an
  ARG_MAX with keepdim, STRIDED_SLICE after a TRANSPOSE_CONV whose torch padding is not VALID;
* QUANTIZE / DEQUANTIZE at the boundary for ``io='float'`` (argmax's int32 indices stay int32;
  an int16 output is dequantized from int16).

16x8 mixed precision (``edgeq.passes.precision``): int16 activations are INT16 tensors (zero
point 0) and their layers TFLite's 16x8 kernels: CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED
with int8 weights and INT64 biases, ADD with ``pot_scale_int16`` false (the general-scale
algorithm the reference implements), MAX_POOL_2D / AVERAGE_POOL_2D / RESHAPE / TRANSPOSE / PAD
in int16 (PADV2 fills max pools with -32768, MAXIMUM / MINIMUM clamp with int16 bounds), and
``requantize`` is QUANTIZE between int8 and int16 (TFLite's Requantize). TFLite Micro and
LiteRT's reference kernels both compute these exactly as the reference (LiteRT's reference
int16 FULLY_CONNECTED excepted: it requantizes in double, like its int8 one).

Real-model ops (``lower_arithmetic``, ``lower_shapes``, ``lower_layers``): int8 tables TFLite has
no exact operator for (sqrt, gelu) are looked up with CAST + ADD + GATHER; DIV is guarded
against zero denominators; sum is a relabelled MEAN (LiteRT's reference SUM reads int8 as
uint8); embedding ids are clamped before GATHER; 16x8 adds MUL, LOGISTIC, TANH, MEAN, ABS,
BATCH_MATMUL, STRIDED_SLICE in int16 and sub as int16 MUL by -1 + ADD. TRANSPOSE / STRIDED_SLICE
past TFLite Micro's ranks drop unit dimensions, CONCATENATION joins at most 10 inputs at a time.

Operator versions follow LiteRT's ``tools/versioning/op_version.cc`` for int8 operands, and
for int16 ones: CONV_2D 4, DEPTHWISE_CONV_2D 5, FULLY_CONNECTED 7, ADD 3 (general scale),
pools 3, QUANTIZE 2 (int16 output), DEQUANTIZE 3, MAXIMUM / MINIMUM 4, TRANSPOSE 5.
"""
from __future__ import annotations



from ...errors import UnsupportedOpError
from ...ir import Graph
from ...ops import get_op
from . import lower_arithmetic, lower_control, lower_elementwise, lower_layers, lower_shapes  # noqa: F401 - they fill the table
from .builder import BO, ModelBuilder
from .peephole import collapse_glue, compact_buffers
from .registry import LOWERINGS, REFUSALS
from .schema import fb

#: how ``linear`` is lowered: a 1x1 CONV_2D (bit-exact in TFLite Micro and LiteRT reference
#: kernels) or the native FULLY_CONNECTED (LiteRT's reference kernel requantizes it in float)
LINEAR_OPS = ("conv_2d", "fully_connected")


def supported_ops() -> list[str]:
    """Model ops this target lowers (ops only passes insert, such as ``requantize``, not listed)."""
    return sorted(op for op in LOWERINGS if not get_op(op).internal)


def check_supported(graph: Graph) -> None:
    """Raise UnsupportedOpError for the first node the TFLite target cannot express."""
    for node in graph.nodes:
        if node.op == "conv_transpose2d" and (node.attrs["groups"] != 1 or tuple(node.attrs["dilation"]) != (1, 1)):
            raise UnsupportedOpError(
                f"the tflite target cannot lower op 'conv_transpose2d' at {node.where()} with groups="
                f"{node.attrs['groups']}, dilation={tuple(node.attrs['dilation'])}: TFLite's TRANSPOSE_CONV has "
                "neither (the onnx target lowers it; see `edgeq targets --ops`)")
        if node.op not in LOWERINGS:
            why = REFUSALS.get(node.op, "")
            raise UnsupportedOpError(
                f"the tflite target cannot lower op '{node.op}' at {node.where()}"
                f"{': ' + why if why else ''}; it supports: {', '.join(supported_ops())} "
                "(see `edgeq targets --ops` for every target's ops)")


def build_model(graph: Graph, io: str = "int8", description: str = "", version: str = "",
                linear_op: str = "conv_2d", extra_metadata: dict | None = None) -> fb.ModelT:
    if not graph.quantized or graph.layout != "nhwc":
        raise ValueError("the tflite lowering takes the quantized NHWC graph from prepare()")
    if io not in ("int8", "float"):
        raise ValueError(f"io must be 'int8' or 'float', not {io!r}")
    if linear_op not in LINEAR_OPS:
        raise ValueError(f"linear_op must be one of {', '.join(LINEAR_OPS)}, not {linear_op!r}")
    check_supported(graph)
    b = ModelBuilder(graph, linear_op)
    model_inputs = []
    for name in graph.inputs:
        if io == "float" and graph.t(name).quant is not None:     # integer inputs (ids) stay int32
            t = graph.t(name)
            f = b.add_tensor(f"{name}_float", t.shape, "float32")
            b.op(BO.QUANTIZE, [f], [b.tensor(name)], version=2 if t.dtype == "int16" else 1)
            model_inputs.append(f)
        else:
            model_inputs.append(b.tensor(name))
    for node in graph.nodes:
        LOWERINGS[node.op](b, node)
    model_outputs = []
    for name in graph.outputs:
        if io == "float" and graph.t(name).quant is not None:   # argmax indices stay int32
            f = b.add_tensor(f"{name}_float", graph.t(name).shape, "float32")
            b.op(BO.DEQUANTIZE, [b.tensor(name)], [f], version=3 if graph.t(name).dtype == "int16" else 2)
            model_outputs.append(f)
        else:
            model_outputs.append(b.tensor(name))
    meta = {"producer": "edgeq", "edgeq_version": version, "description": description, "io": io,
            "linear_op": linear_op,
            "input_layout": graph.input_layout, **(extra_metadata or {})}
    io = collapse_glue(b, model_inputs + model_outputs)
    model = b.finish(io[:len(model_inputs)], io[len(model_inputs):], description, meta)
    compact_buffers(model)
    return model


