"""What the lowerings write into: one model's C namespace, arena offsets and constant arrays
(``ModelCode``), and one layer's comment, parameter structs, calls and arrays (``LayerCode``)."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ...ir import Graph, Node, Tensor
from ...memory_plan import MemoryPlan, scratch_name
from .cformat import CTYPE_BYTES, Field, Names, c_array, c_identifier, initializer_lines, shape_text
from .cheaders import Kernel, KernelInterfaceError, kernel_api


class ModelCode:
    """The state of one model's generation shared by its layers: identifiers of NAME.c, arena
    offset constants, constant arrays (deduplicated by source tensor), kernels called."""

    def __init__(self, graph: Graph, name: str, plan: MemoryPlan, trace: bool = False,
                 marks: bool = False) -> None:
        self.graph = graph
        self.name = name
        self.upper = name.upper()
        self.plan = plan
        self.trace = trace
        self.marks = marks
        # one namespace for every file-scope identifier of NAME.c
        self.ids = Names({"arena", "input", "output", "status", f"{name}_arena", f"{name}_invoke",
                          f"{name}_input", f"{name}_run"})
        self.used_regions: set[str] = set()
        self.offset_const: dict[int, str] = {}          # arena buffer id -> enum name
        self.weight_symbol: dict[tuple[str, str], str] = {}
        self.weight_bytes = 0
        self.layers: list[LayerCode] = []
        self.kernels: list[Kernel] = []                  # in first-call order
        self.copy_lines: list[str] = []                  # graph outputs stored elsewhere
        self.aligned_arrays = False                      # some constant array is word-aligned
        self.multi_in = len(graph.inputs) > 1
        self.multi_out = len(graph.outputs) > 1
        wide = any(graph.t(n).dtype == "int16" for n in graph.activations())
        #: "int8", or "int8 / 16x8 mixed-precision" when some layers have int16 activations
        self.kind = "int8 / 16x8 mixed-precision" if wide else "int8"

    # -- activations ----------------------------------------------------------------------
    def ptr(self, tensor: str) -> str:
        """Pointer expression (int8_t *) of an activation: arena, input or output buffer."""
        t = self.plan.tensors[tensor]
        self.used_regions.add(t.region)
        if t.region == "arena":
            if t.buffer not in self.offset_const:
                base = "OFFSET_" + c_identifier(tensor, "tensor").upper()
                self.offset_const[t.buffer] = self.ids.get(base)
            return f"arena + {self.offset_const[t.buffer]}"
        if t.region == "input" and self.plan.input_in_arena:
            base = f"arena + {self.input_const()}"
            if t.offset == 0:
                return base
            return f"{base} + {self.upper}_INPUT{self.plan.input_offsets.index(t.offset)}_OFFSET"
        if t.region == "input":
            if not self.multi_in or t.offset == 0:
                return "input" if t.offset == 0 else f"input + {t.offset}"
            idx = self.plan.input_offsets.index(t.offset)
            return f"input + {self.upper}_INPUT{idx}_OFFSET"
        if not self.multi_out or t.offset == 0:
            return "output" if t.offset == 0 else f"output + {t.offset}"
        idx = self.plan.output_offsets.index(t.offset)
        return f"output + {self.upper}_OUTPUT{idx}_OFFSET"

    def input_const(self) -> str:
        """The enum name of the input block's offset in the arena (input in the arena)."""
        if -1 not in self.offset_const:
            self.offset_const[-1] = self.ids.get("OFFSET_INPUT")
        return self.offset_const[-1]

    def tptr(self, tensor: str, const: bool = False) -> str:
        """Pointer expression of an activation with its element type: ``ptr`` (bytes) for int8
        (and int32 indices, written as bytes), cast to ``int16_t *`` for an int16 tensor."""
        p = self.ptr(tensor)
        if self.graph.t(tensor).dtype != "int16":
            return p
        return f"({'const ' if const else ''}int16_t *)({p})"

    def scratch_ptr(self, node: str, ctype: str = "int16_t") -> str:
        """Pointer expression (``ctype *``) of a node's scratch buffer in the arena."""
        if ctype == "int8_t":
            return self.ptr(scratch_name(node))
        return f"({ctype} *)(void *)({self.ptr(scratch_name(node))})"

    def nbytes(self, tensor: str) -> int:
        """Bytes of an activation (int8: its element count; argmax's int32 indices: 4 each)."""
        return self.plan.tensors[tensor].size

    def where(self, tensor: str) -> str:
        t = self.plan.tensors[tensor]
        return f"{t.region}+{t.offset}"

    def use(self, kernel: Kernel) -> None:
        if kernel not in self.kernels:
            self.kernels.append(kernel)

    # -- what the files need ------------------------------------------------------------------
    def kernel_files(self) -> list[str]:
        return sorted({f for k in self.kernels for f in k.files})

    def api_headers(self) -> list[str]:
        """The headers NAME.c includes: those declaring the kernels it calls."""
        return sorted({k.header for k in self.kernels})

    def uses_status(self) -> bool:
        return any(k.returns_status for k in self.kernels)


class LayerCode:
    """One layer of NAME.c as its lowering writes it."""

    def __init__(self, model: ModelCode, index: int, node: Node, kernels: tuple[Kernel, ...]) -> None:
        """``kernels``: the kernels the op's lowering may call (its registry entry)."""
        self.model = model
        self.graph = model.graph
        self.index = index
        self.node = node
        self.kernels = kernels
        ins = [shape_text(self.graph.t(n).shape) for n in node.inputs if not self.graph.t(n).is_constant]
        outs = [shape_text(self.graph.t(n).shape) for n in node.outputs]
        self.comment = (f"Layer {index}: {node.name} (torch module {node.module_path or '<top level>'})\n"
                        f"{node.op}, {', '.join(ins)} -> {', '.join(outs)}")
        self.params: list[str] = []                     # static const struct definitions
        self.calls: list[str] = []                      # statements of NAME_invoke
        self.arrays: list[tuple[str, str, str]] = []    # (extern declaration, definition, comment)

    # -- the node -----------------------------------------------------------------------------
    @property
    def attrs(self) -> dict:
        return self.node.attrs

    def input(self, index: int = 0) -> Tensor:
        return self.graph.t(self.node.inputs[index])

    @property
    def output(self) -> Tensor:
        return self.graph.t(self.node.outputs[0])

    @property
    def int16(self) -> bool:
        """Does the layer have int16 activations (a 16x8 layer)?"""
        return any(self.graph.t(n).dtype == "int16" for n in [*self.node.inputs, *self.node.outputs]
                   if not self.graph.t(n).is_constant)

    def note(self, text: str) -> None:
        """Add to the layer's comment (kernel size, axis, ...)."""
        self.comment += f", {text}"

    def kernel_for(self, s8: Kernel, s16: Kernel) -> Kernel:
        """The layer's kernel by its activation type (the 16x8 one noted in the comment)."""
        if not self.int16:
            return s8
        self.note("16x8 (int16 activations)")
        return s16

    def ptr(self, tensor: str) -> str:
        return self.model.ptr(tensor)

    def input_const(self) -> str:
        """The enum name of the input block's offset in the arena (input in the arena)."""
        if -1 not in self.offset_const:
            self.offset_const[-1] = self.ids.get("OFFSET_INPUT")
        return self.offset_const[-1]

    def scratch(self, ctype: str = "int16_t") -> str:
        """Pointer expression (``ctype *``) of this layer's scratch buffer (the plan must have
        given it one)."""
        if scratch_name(self.node.name) not in self.model.plan.tensors:
            raise KernelInterfaceError(f"internal error: the plan has no scratch for {self.node.name}")
        return self.model.scratch_ptr(self.node.name, ctype)

    def tptr(self, tensor: str, const: bool = False) -> str:
        return self.model.tptr(tensor, const)

    # -- constants ----------------------------------------------------------------------------
    def const_array(self, role: str, ctype: str, values: np.ndarray, source: str, per_line: int,
                    note: str, aligned: bool = False) -> str:
        """Symbol of a constant array in NAME_weights.c (one per (source tensor, role));
        ``aligned``: word-aligned (kernels read it 32 bits at a time)."""
        model = self.model
        key = (source, role)
        if key in model.weight_symbol:
            return model.weight_symbol[key]
        sym = model.ids.get(f"{model.name}_{c_identifier(self.node.name, 'layer')}_{role}")
        model.weight_symbol[key] = sym
        values = np.asarray(values)
        n = int(values.size)
        model.weight_bytes += n * CTYPE_BYTES[ctype]
        self.arrays.append((f"extern const {ctype} {sym}[{n}];", c_array(ctype, sym, values, per_line, aligned),
                            note))
        model.aligned_arrays |= aligned
        return sym

    def operand(self, index: int) -> str:
        """Pointer expression of input ``index``: an activation (``tptr``), or a constant int8
        array (int16 in a 16x8 layer)."""
        name = self.node.inputs[index]
        t = self.graph.t(name)
        if not t.is_constant:
            return self.tptr(name, const=True)
        ctypes = {"int8": "int8_t", "int16": "int16_t"}
        if t.dtype not in ctypes or t.data is None:
            raise UnsupportedOpError(f"{self.node.op} at {self.node.where()}: constant operand {name} is {t.dtype}; "
                                     f"the C target takes int8 (and in 16x8 layers int16) constant operands only")
        return self.const_array(f"operand{index + 1}", ctypes[t.dtype], t.data.astype(np.int64), name, 16,
                                f"constant operand {index + 1}, {shape_text(t.shape)}")

    # -- kernel calls -------------------------------------------------------------------------
    def params_struct(self, kernel: Kernel, fields: list[Field], suffix: str = "") -> str:
        """Name of a ``static const`` parameter struct of ``kernel`` holding ``fields``, which must
        be exactly the members of the struct in its header."""
        ctype = kernel.params
        if ctype is None:
            raise KernelInterfaceError(f"internal error: {kernel.function}() takes no parameter struct")
        who = f"the {self.node.op} lowering (layer {self.node.name}, {kernel.function})"
        ordered = kernel_api().check_fields(ctype, fields, who)
        base = c_identifier(self.node.name, "layer") + suffix
        if base.lower().startswith("edgeq") or base.isupper():
            base = f"layer_{base}"
        name = self.model.ids.get(base)
        self.params.append("\n".join([f"static const {ctype} {name} = {{", *initializer_lines(ordered), "};"]))
        return name

    def call(self, kernel: Kernel, fields: list[Field] | None = None, args: list[str] | None = None,
             suffix: str = "") -> None:
        """A call of ``kernel``: ``&params`` (from ``fields``) then ``args`` (default: the
        activation inputs, then the output); a status kernel returns early on failure."""
        if kernel not in self.kernels:
            raise KernelInterfaceError(f"internal error: the {self.node.op} lowering calls {kernel.function}(), "
                                   f"which its registry entry does not name")
        self.model.use(kernel)
        if args is None:
            args = [self.tptr(n, const=True) for n in self.node.inputs if not self.graph.t(n).is_constant]
            args.append(self.tptr(self.node.outputs[0]))
        if fields is not None:
            args = [f"&{self.params_struct(kernel, fields, suffix)}", *args]
        statement = f"{kernel.function}({', '.join(args)});"
        if kernel.returns_status:
            self.calls += [f"status = {statement}", "if (status != 0) {", "    return status;", "}"]
        else:
            self.calls.append(statement)
