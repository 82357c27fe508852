"""torch.export front end: ExportedProgram (core aten after decompositions) -> edgeq IR.

Each aten op is mapped by one small handler (``frontend/handlers/``, registered with
``@handles``). Ops whose inputs are all constants are evaluated
right away with torch (constant folding at trace time: weight permutes and the like)."""
from __future__ import annotations

import hashlib
import operator
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.fx.config

from ..errors import EdgeqError, UnsupportedOpError
from ..ir import Graph, Node, Tensor
from ..ops import get_op
from ..ops.base import check_graph

aten = torch.ops.aten
Handler = Callable[["Tracer", torch.fx.Node], None]
HANDLERS: dict[Any, Handler] = {}
#: ops the decomposition table would rewrite that a handler takes whole (``handles(whole=True)``):
#: a graph keeping them still takes the one-trace path of ``_export_core_aten``
HANDLED_WHOLE: set[Any] = set()


def handles(*targets: Any, whole: bool = False) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for t in targets:
            HANDLERS[t] = fn
            if whole:
                HANDLED_WHOLE.add(t)
        return fn
    return deco


def supported_aten_ops() -> list[str]:
    return sorted({str(t).replace("aten.", "") for t in HANDLERS if t is not operator.getitem})


def trace(model: torch.nn.Module | torch.export.ExportedProgram,
          input_shapes: list[tuple[int, ...]] | None = None,
          integer_inputs: list[bool] | None = None) -> Graph:
    """Export ``model`` (if not already exported) and convert it to a float edgeq Graph.

    ``input_shapes`` are per-input shapes without the batch dimension (batch 1 is used);
    ``integer_inputs`` marks the inputs traced as int64 (token ids, masks), the rest float32."""
    if isinstance(model, torch.nn.Module):
        if input_shapes is None:
            raise EdgeqError("an nn.Module needs input shapes: pass calibration data or --input-shape")
        integer = integer_inputs or [False] * len(input_shapes)
        example = tuple(torch.zeros((1, *s), dtype=torch.int64 if i else torch.float32)
                        for s, i in zip(input_shapes, integer))
        try:
            with _without_stack_traces():
                ep = _export_core_aten(model.eval(), example)
        except Exception as e:
            raise EdgeqError(f"torch.export failed on the model: {type(e).__name__}: {e}".splitlines()[0]) from e
    else:
        with _without_stack_traces():
            ep = model.run_decompositions(_decompositions())
    return Tracer(ep).run()


@contextmanager
def _without_stack_traces() -> Iterator[None]:
    """Trace without recording a Python stack per FX node: the IR reads module paths
    (``nn_module_stack``), never stack traces, and recording them is a tenth of the export."""
    before = torch.fx.config.do_not_emit_stack_traces
    torch.fx.config.do_not_emit_stack_traces = True
    try:
        yield
    finally:
        torch.fx.config.do_not_emit_stack_traces = before


def _export_core_aten(model: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> torch.export.ExportedProgram:
    """The model in core aten, traced once where that suffices.

    ``torch.export.export`` traces to the training IR and ``run_decompositions`` traces it a
    second time (about half of the export's cost). One post-dispatch trace (torch's own
    ``_export(pre_dispatch=False)``: composite ops decomposed while tracing) gives the same
    core-aten graph when no op left in it is one the decomposition table would still rewrite,
    except ops on weights alone (``aten.t`` of a linear weight), which the tracer folds into
    constants, and ops a handler takes whole (``HANDLED_WHOLE``: PReLU, hardswish, hardsigmoid,
    views, squeezes). Otherwise (the post-dispatch graph decomposed further need not be the
    training IR's: an upsampling became computed indices), when that trace fails, and for
    recurrent layers (the one-trace path would unroll them; the front end keeps them whole,
    ``KEPT_WHOLE``), the two traces as before.
    Where both apply they give the same IR graph (compared on the example zoo)."""
    table = _decompositions()
    if not any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
        from torch.export._trace import _export   # private torch API (torch is pinned); lazily as torch does
        try:
            ep = _export(model, example, strict=False, pre_dispatch=False)
        except Exception:   # noqa: BLE001 - the two traces below report the model's own export error
            ep = None
        if ep is not None and _core_aten_already(ep, table):
            return ep
    return torch.export.export(model, example).run_decompositions(table)


def _core_aten_already(ep: torch.export.ExportedProgram, table: Any) -> bool:
    """No op left that the table would rewrite, but ops on weights alone and ops handled whole."""
    weights = set(ep.graph_signature.inputs_to_parameters) | set(ep.graph_signature.inputs_to_buffers)
    return all(n.target not in table or n.target in HANDLED_WHOLE or all(a.name in weights for a in n.all_input_nodes)
               for n in ep.graph.nodes if n.op == "call_function")


def _decompositions() -> Any:
    """torch's core-aten table, keeping LSTM and GRU whole: the front end turns each layer into
    one loop (``scan``) instead of a copy of the cell per time step."""
    table = torch.export.default_decompositions()
    for op in KEPT_WHOLE:
        if op in table:
            del table[op]
    return table


KEPT_WHOLE = (aten.lstm.input, aten.gru.input)


#: ``Tracer.emit``'s default: the output's batch axis is its first activation input's
INHERIT = object()


class Tracer:
    """Walks the exported graph once, one handler per aten call.

    The model is exported at batch 1, and inside it torch may move the batch axis (a
    ``batch_first`` RNN permutes (1, T, F) to (T, 1, F)) or squeeze it away (``nn.Linear`` on a
    3-D input views (1, T, C) as (T, C)). The tracer follows where each value's batch axis is:
    ``batch[name]`` is that torch dimension, or None once it is squeezed. An IR tensor is always
    (batch, *rest): ``rest`` is the torch shape without the batch axis. Handlers map torch
    dimensions with ``ir_dim`` and shapes with ``rest``; ops on the batch axis itself (which has
    size 1) become identities, and ops that would mix samples are refused."""

    def __init__(self, ep: torch.export.ExportedProgram) -> None:
        self.ep = ep
        self.graph = Graph()
        self.consts: dict[str, Any] = {}    # fx node name -> torch tensor (or tuple of them)
        self.names: dict[str, str] = {}  # fx node name -> IR tensor name (aliases, getitem)
        self.batch: dict[str, int | None] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}   # shapes that differ from torch's (see shape())
        self.shared: dict[tuple, str] = {}     # constant contents -> IR tensor (``constant``)
        self.conditions: dict[str, torch.fx.Node] = {}  # comparisons awaiting a where()
        self.splits: dict[str, tuple] = {}  # split nodes: (source, dim, piece offsets)
        self.tuples: dict[str, list[tuple[str, int | None]]] = {}  # multi-output ops: (IR tensor, batch axis)
        sig = ep.graph_signature
        self.param_of = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
                         **sig.inputs_to_lifted_tensor_constants}

    # -- values ------------------------------------------------------------------
    def is_const(self, arg: Any) -> bool:
        return isinstance(arg, torch.fx.Node) and arg.name in self.consts

    def is_activation(self, arg: Any) -> bool:
        """A computed value with an IR tensor (not a constant, nor a recorded split or condition)."""
        return isinstance(arg, torch.fx.Node) and not self.is_const(arg) and arg.name in self.batch

    def tensor(self, arg: torch.fx.Node) -> str:
        """IR tensor name of an FX value, materialising constants on first use."""
        if arg.name in self.consts:
            if arg.name not in self.graph.tensors:
                data = self.const_array(arg)
                self.graph.add_tensor(Tensor(arg.name, tuple(data.shape), str(data.dtype), np.ascontiguousarray(data)))
            return arg.name
        return self.names.get(arg.name, arg.name)

    def const_array(self, arg: torch.fx.Node) -> np.ndarray:
        """A constant's data: float32, or int64 for integer and boolean constants (indices)."""
        data = self.consts[arg.name].detach()
        if data.dtype.is_floating_point:
            return data.numpy().astype(np.float32)
        return data.numpy().astype(np.int64)

    def constant(self, name: str, data: np.ndarray) -> str:
        """An IR constant; the same data (a weight an unrolled loop reads at every step) is one
        tensor, stored once."""
        data = np.ascontiguousarray(data)
        key = (str(data.dtype), data.shape, hashlib.sha256(data.tobytes()).hexdigest())
        if key not in self.shared:
            self.shared[key] = self.graph.add_constant(name, data).name
        return self.shared[key]

    def shape(self, arg: torch.fx.Node) -> tuple[int, ...]:
        """The torch shape of an FX value (at batch 1; an expand left to broadcasting keeps its
        input's)."""
        if arg.name in self.shapes:
            return self.shapes[arg.name]
        val = arg.meta["val"]
        if isinstance(val, (tuple, list)):  # multi-output aten op: output 0 is the tensor we keep
            val = val[0]
        return tuple(int(d) for d in val.shape)

    def batch_axis(self, arg: torch.fx.Node) -> int | None:
        return self.batch.get(arg.name)

    @staticmethod
    def rest(shape: tuple[int, ...], batch: int | None) -> tuple[int, ...]:
        """The IR shape without its batch dimension."""
        return tuple(d for i, d in enumerate(shape) if i != batch)

    def ir_dim(self, fx: torch.fx.Node, arg: torch.fx.Node, dim: int) -> int:
        """IR dimension of torch dimension ``dim`` of activation ``arg`` (never the batch axis)."""
        b = self.batch_axis(arg)
        dim %= max(len(self.shape(arg)), 1)
        if dim == b:
            raise unsupported(fx, "an operation along the batch dimension (it would mix samples)")
        return dim + 1 if b is None or dim < b else dim

    def batch_first(self, fx: torch.fx.Node, arg: torch.fx.Node) -> str:
        """IR tensor of ``arg`` for an op that needs the batch as torch dimension 0 (NCHW
        convolutions, pools, resizes): a squeezed batch comes back as the leading size-1 axis."""
        b = self.batch_axis(arg)
        if b == 0:
            return self.tensor(arg)
        shape = self.shape(arg)
        if b is None and shape and shape[0] == 1:
            return self.reshaped(self.tensor(arg), shape, fx, "batch_first")
        raise unsupported(fx, f"an input of shape {shape} whose batch dimension is not the first")

    def ir_shape(self, arg: torch.fx.Node) -> tuple[int, ...]:
        return (1, *self.rest(self.shape(arg), self.batch_axis(arg)))

    # -- emitting ----------------------------------------------------------------
    def emit(self, fx: torch.fx.Node, op: str, inputs: list[str], attrs: dict[str, Any] | None = None,
             batch: Any = INHERIT) -> None:
        """Add the node computing ``fx``; ``batch``: the torch dimension of its output's batch
        axis (default: the first activation input's, for ops that keep the rank). Ops that move
        data keep an integer input's type (a reshaped mask); the others compute reals."""
        first = next((a for a in fx.all_input_nodes if self.is_activation(a)), None)
        if batch is INHERIT:
            batch = self.batch_axis(first) if first is not None else None
        dtype = "float32"
        if get_op(op).same_quant_as_input and inputs:
            dtype = self.graph.t(inputs[0]).dtype
        self.batch[fx.name] = batch
        self.graph.add_tensor(Tensor(fx.name, (1, *self.rest(self.shape(fx), batch)), dtype))
        self.graph.nodes.append(Node(op, inputs, [fx.name], attrs or {}, fx.name, module_path(fx)))

    def alias(self, fx: torch.fx.Node, source: torch.fx.Node, batch: Any = INHERIT) -> None:
        """``fx`` is ``source`` under another torch shape that has the same IR shape."""
        self.names[fx.name] = self.tensor(source)
        self.batch[fx.name] = self.batch_axis(source) if batch is INHERIT else batch

    def intermediate(self, fx: torch.fx.Node, op: str, inputs: list[str], suffix: str,
                     attrs: dict[str, Any] | None = None, shape: tuple[int, ...] | None = None) -> str:
        """A node inside ``fx``'s decomposition; its output has ``fx``'s IR shape unless given."""
        name = self.graph.unique_name(f"{fx.name}_{suffix}")
        self.graph.add_tensor(Tensor(name, tuple(shape) if shape else self.ir_shape(fx), "float32"))
        self.graph.nodes.append(Node(op, inputs, [name], attrs or {}, name, module_path(fx)))
        return name

    def alias_tensor(self, fx: torch.fx.Node, name: str, batch: int | None) -> None:
        """``fx`` is the IR tensor ``name`` (the last node of a decomposition)."""
        self.names[fx.name] = name
        self.batch[fx.name] = batch

    def reshaped(self, name: str, shape: tuple[int, ...], fx: torch.fx.Node, what: str = "aligned") -> str:
        """IR tensor ``name`` reshaped to the IR ``shape`` (the same tensor when it has it)."""
        t = self.graph.t(name)
        if t.shape == tuple(shape):
            return name
        if t.is_constant:
            return self.graph.add_constant(f"{name}_{what}", np.ascontiguousarray(t.data.reshape(shape))).name
        out = self.graph.add_tensor(Tensor(self.graph.unique_name(f"{name}_{what}"), tuple(shape), t.dtype)).name
        self.graph.nodes.append(Node("reshape", [name], [out], {"shape": list(shape[1:])}, out, module_path(fx)))
        return out

    def broadcast_batch(self, fx: torch.fx.Node, args: list[Any]) -> int | None:
        """The batch axis of an elementwise op's output (torch broadcasting aligns the right)."""
        out_rank = len(self.shape(fx))
        axes = {self.batch_axis(a) + out_rank - len(self.shape(a)) for a in args
                if self.is_activation(a) and self.batch_axis(a) is not None}
        if len(axes) > 1:
            raise unsupported(fx, "operands whose batch dimensions do not line up (the result would mix samples)")
        return axes.pop() if axes else None

    def aligned(self, fx: torch.fx.Node, arg: Any, out_batch: int | None, scale: float = 1.0,
                shape_of: torch.fx.Node | None = None) -> str:
        """IR tensor of an elementwise operand (an activation, a torch constant or a Python
        number, times ``scale``) shaped to broadcast against the output's IR shape (``shape_of``:
        against the leading dimensions only, keeping the operand's last two: matrix products)."""
        out_shape = self.shape(fx)
        if shape_of is not None:
            out_shape = out_shape[:-2] + self.shape(shape_of)[-2:]
        if self.is_activation(arg):
            if scale != 1.0:
                raise unsupported(fx, "scaled tensor operand")
            shape, b = self.shape(arg), self.batch_axis(arg)
            name = self.tensor(arg)
        else:
            if isinstance(arg, np.ndarray):
                data = arg.astype(np.float32)
            elif isinstance(arg, torch.fx.Node):
                data = self.const_array(arg)
            else:
                data = np.array(arg, dtype=np.float32)
            if scale != 1.0:
                data = (data.astype(np.float64) * scale).astype(np.float32)
            shape, b = tuple(data.shape), None
            name = None
        offset = len(out_shape) - len(shape)
        if offset < 0:
            raise unsupported(fx, f"an operand of rank {len(shape)} broadcast to rank {len(out_shape)}")
        full = (1,) * offset + tuple(shape)                 # torch-aligned to the output
        if b is not None and b + offset != out_batch:
            raise unsupported(fx, "operands whose batch dimensions do not line up (the result would mix samples)")
        if out_batch is not None and full[out_batch] != 1:
            raise unsupported(fx, f"a constant of shape {tuple(shape)} varies along the batch dimension")
        ir = (1, *self.rest(full, out_batch))
        if name is None:
            return self.graph.add_constant(f"{fx.name}_const", np.ascontiguousarray(data.reshape(ir))).name
        return self.reshaped(name, ir, fx)

    # -- main loop ---------------------------------------------------------------
    def run(self) -> Graph:
        state = {**self.ep.state_dict, **self.ep.constants}
        for fx in self.ep.graph.nodes:
            if fx.op == "placeholder":
                if fx.name in self.param_of:
                    self.consts[fx.name] = state[self.param_of[fx.name]]
                else:
                    self._input(fx)
            elif fx.op == "call_function":
                self.call(fx)
            elif fx.op == "output":
                outs = fx.args[0]
                for o in (outs if isinstance(outs, (list, tuple)) else [outs]):
                    if not isinstance(o, torch.fx.Node) or self.is_const(o):
                        raise EdgeqError("a model output is a constant; edgeq needs outputs computed from inputs")
                    self.graph.outputs.append(self._output(fx, o))
        self.graph.prune()
        check_graph(self.graph)
        return self.graph

    def _output(self, fx: torch.fx.Node, o: torch.fx.Node) -> str:
        """A graph output with its batch first, as torch returns it at batch 1."""
        name = self.tensor(o)
        if self.batch_axis(o) is None and self.shape(o) and self.shape(o)[0] == 1:
            name = self.reshaped(name, self.shape(o), fx, "output")
        if name in self.graph.inputs or name in self.graph.outputs:   # an output that is an input, or twice
            name = self.reshaped(name, (*self.graph.t(name).shape, 1), fx, "copy")
        return name

    def _input(self, fx: torch.fx.Node) -> None:
        val = fx.meta["val"]
        shape = self.shape(fx)
        if not shape or shape[0] != 1:
            raise EdgeqError(f"input '{fx.name}' was exported with shape {shape}; export with batch size 1 "
                             "as dimension 0 (edgeq batches data itself)")
        dtype = "float32" if val.dtype.is_floating_point else \
            ("int32" if val.dtype == torch.int32 else "int64")
        self.graph.add_tensor(Tensor(fx.name, shape, dtype))
        self.graph.inputs.append(fx.name)
        self.batch[fx.name] = 0

    def call(self, fx: torch.fx.Node) -> None:
        tensor_args = [a for a in fx.all_input_nodes]
        if tensor_args and all(self.is_const(a) for a in tensor_args) or \
                (not tensor_args and fx.target in CONSTANT_PRODUCERS):
            self.fold(fx)
            return
        handler = HANDLERS.get(fx.target)
        if handler is None:
            raise UnsupportedOpError(
                f"unsupported op '{op_name(fx)}' from module '{module_path(fx) or '<top level>'}' "
                f"(node {fx.name}); `edgeq targets --ops` lists the ops edgeq supports")
        handler(self, fx)

    def fold(self, fx: torch.fx.Node) -> None:
        """Evaluate ``fx`` with torch now: its inputs are constants (a tuple result, e.g. a
        split, is kept whole for the getitems that take its pieces)."""
        def sub(a: Any) -> Any:
            return self.consts[a.name] if isinstance(a, torch.fx.Node) else a
        args = torch.fx.node.map_aggregate(fx.args, sub)
        kwargs = torch.fx.node.map_aggregate(fx.kwargs, sub)
        with torch.no_grad():
            result = fx.target(*args, **kwargs)
        if isinstance(result, torch.Tensor) or (isinstance(result, (tuple, list)) and result
                                                and all(isinstance(r, torch.Tensor) for r in result)):
            self.consts[fx.name] = result


#: aten ops that make a tensor from no tensor (a constant the tracer evaluates right away)
CONSTANT_PRODUCERS = {aten.full.default, aten.zeros.default, aten.ones.default, aten.arange.default,
                      aten.arange.start, aten.arange.start_step, aten.scalar_tensor.default,
                      aten.empty.memory_format}


def module_path(fx: torch.fx.Node) -> str:
    stack = fx.meta.get("nn_module_stack")
    if not stack:
        return ""
    return str(list(stack.values())[-1][0])


def op_name(fx: torch.fx.Node) -> str:
    return str(fx.target).replace("aten.", "")


def unsupported(fx: torch.fx.Node, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"unsupported use of '{op_name(fx)}' from module '{module_path(fx) or '<top level>'}' "
                              f"(node {fx.name}): {why}")


def pair(v: Any) -> tuple[int, int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return (int(v[0]), int(v[-1]))
