"""Graph-to-graph passes, one job each. ``prepare_float_graph`` runs the standard pipeline."""
from ..ir import Graph
from ..ops.base import check_graph
from .fold_affine_constants import fold_affine_constants
from .fold_batch_norm import fold_batch_norm
from .fold_constants import fold_constants
from .fuse_activations import fuse_activations
from .layout import to_nhwc
from .lift_1d import lift_1d
from .lower_global_pool import lower_global_pool
from .merge_data_movement import merge_data_movement
from .recognize_activations import recognize_activations
from .remove_identities import remove_identities


def prepare_float_graph(graph: Graph) -> Graph:
    """The float-graph pipeline every target starts from (layout is decided later, per target)."""
    for p in (remove_identities, recognize_activations, lift_1d, remove_identities, fold_constants,
              fold_batch_norm, fold_affine_constants, lower_global_pool, remove_identities, merge_data_movement,
              fuse_activations):
        graph = p(graph)
    check_graph(graph)            # every pass keeps nodes within their op's attribute schema
    return graph


def nhwc_graph(graph: Graph, input_layout: str = "nhwc") -> Graph:
    """The NHWC form TFLite and C compute in: the layout pass, then the reshape / transpose
    chains it leaves collapsed."""
    return merge_data_movement(to_nhwc(graph, input_layout=input_layout))


__all__ = ["prepare_float_graph", "nhwc_graph", "merge_data_movement", "remove_identities", "fold_constants", "fold_batch_norm",
           "lower_global_pool", "fuse_activations", "to_nhwc", "fold_affine_constants", "recognize_activations", "lift_1d"]
