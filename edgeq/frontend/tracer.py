"""torch.export front end: ExportedProgram (core aten after decompositions) -> edgeq IR.

Each aten op is mapped by one small handler (``frontend/handlers/``, registered with
``@handles``). Ops whose inputs are all constants are evaluated
right away with torch (constant folding at trace time: weight permutes and the like)."""
from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import torch

from ..errors import EdgeqError, UnsupportedOpError
from ..ir import Graph, Node, Tensor
from ..ops import get_op

aten = torch.ops.aten
Handler = Callable[["Tracer", torch.fx.Node], None]
HANDLERS: dict[Any, Handler] = {}


def handles(*targets: Any) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for t in targets:
            HANDLERS[t] = fn
        return fn
    return deco


def supported_aten_ops() -> list[str]:
    return sorted({str(t).replace("aten.", "") for t in HANDLERS if t is not operator.getitem})


def trace(model: torch.nn.Module | torch.export.ExportedProgram,
          input_shapes: list[tuple[int, ...]] | None = None) -> Graph:
    """Export ``model`` (if not already exported) and convert it to a float edgeq Graph.

    ``input_shapes`` are per-input shapes without the batch dimension (batch 1 is used)."""
    if isinstance(model, torch.nn.Module):
        if input_shapes is None:
            raise EdgeqError("an nn.Module needs input shapes: pass calibration data or --input-shape")
        example = tuple(torch.zeros((1, *s)) for s in input_shapes)
        try:
            ep = torch.export.export(model.eval(), example)
        except Exception as e:
            raise EdgeqError(f"torch.export failed on the model: {type(e).__name__}: {e}".splitlines()[0]) from e
    else:
        ep = model
    ep = ep.run_decompositions()
    return Tracer(ep).run()


class Tracer:
    def __init__(self, ep: torch.export.ExportedProgram) -> None:
        self.ep = ep
        self.graph = Graph()
        self.consts: dict[str, torch.Tensor] = {}
        self.names: dict[str, str] = {}  # fx node name -> IR tensor name (aliases, getitem)
        self.conditions: dict[str, torch.fx.Node] = {}  # comparisons awaiting a where()
        self.splits: dict[str, tuple] = {}  # split nodes: (source, dim, piece offsets)
        sig = ep.graph_signature
        self.param_of = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
                         **sig.inputs_to_lifted_tensor_constants}

    # -- helpers -----------------------------------------------------------------
    def is_const(self, arg: Any) -> bool:
        return isinstance(arg, torch.fx.Node) and arg.name in self.consts

    def tensor(self, arg: torch.fx.Node) -> str:
        """IR tensor name of an FX value, materialising constants on first use."""
        if arg.name in self.consts:
            if arg.name not in self.graph.tensors:
                data = self.consts[arg.name].detach().numpy().astype(np.float32)
                self.graph.add_tensor(Tensor(arg.name, tuple(data.shape), "float32", np.ascontiguousarray(data)))
            return arg.name
        return self.names.get(arg.name, arg.name)

    def const_array(self, arg: torch.fx.Node) -> np.ndarray:
        return self.consts[arg.name].detach().numpy().astype(np.float32)

    def emit(self, fx: torch.fx.Node, op: str, inputs: list[str], attrs: dict[str, Any] | None = None) -> None:
        val = fx.meta["val"]
        if isinstance(val, (tuple, list)):  # multi-output aten op: output 0 is the tensor we keep
            val = val[0]
        self.graph.add_tensor(Tensor(fx.name, tuple(val.shape), "float32"))
        self.graph.nodes.append(Node(op, inputs, [fx.name], attrs or {}, fx.name, module_path(fx)))

    def alias(self, fx: torch.fx.Node, source: torch.fx.Node) -> None:
        self.names[fx.name] = self.tensor(source)

    # -- main loop ---------------------------------------------------------------
    def run(self) -> Graph:
        state = {**self.ep.state_dict, **self.ep.constants}
        for fx in self.ep.graph.nodes:
            if fx.op == "placeholder":
                if fx.name in self.param_of:
                    self.consts[fx.name] = state[self.param_of[fx.name]]
                else:
                    val = fx.meta["val"]
                    self.graph.add_tensor(Tensor(fx.name, tuple(val.shape), "float32"))
                    self.graph.inputs.append(fx.name)
            elif fx.op == "call_function":
                self.call(fx)
            elif fx.op == "output":
                outs = fx.args[0]
                for o in (outs if isinstance(outs, (list, tuple)) else [outs]):
                    if not isinstance(o, torch.fx.Node) or self.is_const(o):
                        raise EdgeqError("a model output is a constant; edgeq needs outputs computed from inputs")
                    self.graph.outputs.append(self.tensor(o))
        for name in self.graph.inputs:
            if self.graph.t(name).shape[0] != 1:
                raise EdgeqError(f"input '{name}' was exported with batch size {self.graph.t(name).shape[0]}; "
                                 "export with batch size 1 (edgeq batches data itself)")
        self.graph.prune()
        for node in self.graph.nodes:
            get_op(node.op).check_attrs(node)
        return self.graph

    def call(self, fx: torch.fx.Node) -> None:
        tensor_args = [a for a in fx.all_input_nodes]
        if tensor_args and all(self.is_const(a) for a in tensor_args):
            self.fold(fx)
            return
        handler = HANDLERS.get(fx.target)
        if handler is None:
            raise UnsupportedOpError(
                f"unsupported op '{op_name(fx)}' from module '{module_path(fx) or '<top level>'}' "
                f"(node {fx.name}). Supported aten ops: {', '.join(supported_aten_ops())}. "
                "See `edgeq targets --ops` for what each target lowers.")
        handler(self, fx)

    def fold(self, fx: torch.fx.Node) -> None:
        def sub(a: Any) -> Any:
            return self.consts[a.name] if isinstance(a, torch.fx.Node) else a
        args = torch.fx.node.map_aggregate(fx.args, sub)
        kwargs = torch.fx.node.map_aggregate(fx.kwargs, sub)
        with torch.no_grad():
            result = fx.target(*args, **kwargs)
        if isinstance(result, torch.Tensor):
            self.consts[fx.name] = result


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


def rank_of(fx: torch.fx.Node) -> int:
    return len(fx.meta["val"].shape)


def operand(t: Tracer, fx: torch.fx.Node, arg: Any, rank: int, scale: float = 1.0) -> str:
    """IR tensor of a binary op operand: an activation, or a constant (torch constant or Python
    number, times ``scale``) left-padded with 1s to the activation rank for broadcasting."""
    if isinstance(arg, torch.fx.Node) and not t.is_const(arg):
        if scale != 1.0:
            raise unsupported(fx, "scaled tensor operand")
        return t.tensor(arg)
    if isinstance(arg, np.ndarray):
        data = arg.astype(np.float32)
    else:
        data = t.const_array(arg) if isinstance(arg, torch.fx.Node) else np.array(arg, dtype=np.float32)
    data = (data.astype(np.float64) * scale).astype(np.float32)
    if data.ndim > rank:
        raise unsupported(fx, f"constant operand of rank {data.ndim} broadcasts over the batch dimension")
    data = data.reshape((1,) * (rank - data.ndim) + data.shape)
    return t.graph.add_constant(f"{fx.name}_const", np.ascontiguousarray(data)).name
