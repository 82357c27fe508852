"""Single-op models: one case per op use, shared by the per-op tests of every target
(``CASES``: name -> (module, input shape without batch); ``INT16_CASES``: those with a 16x8 form)."""
import torch
import torch.nn as nn

from tests.helpers import Fn, conv

CASES = {
    "conv3x3": (conv(in_channels=3, out_channels=8, kernel_size=3, padding=1), (3, 9, 9)),
    "conv_stride_dilation": (conv(in_channels=4, out_channels=6, kernel_size=3, stride=2, dilation=2, padding=2), (4, 11, 10)),
    "conv_asym_kernel": (conv(in_channels=1, out_channels=5, kernel_size=(5, 3), stride=(2, 1), padding=(2, 1)), (1, 12, 7)),
    "depthwise": (conv(in_channels=6, out_channels=6, kernel_size=3, padding=1, groups=6), (6, 8, 8)),
    "depthwise_multiplier2": (conv(in_channels=4, out_channels=8, kernel_size=3, padding=1, groups=4), (4, 7, 7)),
    "grouped": (conv(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=2), (8, 6, 6)),
    "conv_relu6": (Fn(lambda s, x: torch.nn.functional.relu6(s.c(x)), c=nn.Conv2d(3, 4, 3)), (3, 6, 6)),
    "linear_relu": (Fn(lambda s, x: torch.relu(s.l(x)), l=nn.Linear(20, 7)), (20,)),
    "max_pool": (Fn(lambda s, x: torch.nn.functional.max_pool2d(x, 3, 2, 1)), (3, 9, 9)),
    "max_pool_ceil": (Fn(lambda s, x: torch.nn.functional.max_pool2d(x, 2, 2, ceil_mode=True)), (2, 7, 7)),
    "avg_pool": (Fn(lambda s, x: torch.nn.functional.avg_pool2d(x, 2)), (3, 8, 8)),
    "global_avg": (Fn(lambda s, x: x.mean((2, 3))), (5, 6, 6)),
    "add_relu": (Fn(lambda s, x: torch.relu(s.a(x) + s.b(x)), a=nn.Conv2d(3, 3, 1), b=nn.Conv2d(3, 3, 3, padding=1)), (3, 5, 5)),
    "hardtanh": (Fn(lambda s, x: torch.nn.functional.hardtanh(x, -0.5, 0.7)), (10,)),
    "flatten_linear": (Fn(lambda s, x: s.l(torch.flatten(x, 1)), l=nn.Linear(48, 5)), (3, 4, 4)),
    "permute_flatten": (Fn(lambda s, x: torch.flatten(x.permute(0, 2, 3, 1), 1)), (3, 2, 4)),
    "softmax": (Fn(lambda s, x: torch.softmax(x, dim=1)), (12,)),
    "softmax_channels_4d": (Fn(lambda s, x: torch.softmax(x, dim=1)), (5, 3, 2)),
    # --- elementwise (issue 7) ---
    "mul_se_broadcast_hw": (Fn(lambda s, x: s.c(x) * x.mean((2, 3), keepdim=True), c=nn.Conv2d(4, 4, 1)), (4, 5, 6)),
    "mul_two_tensors_relu": (Fn(lambda s, x: torch.relu(s.a(x) * s.b(x)), a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(3, 4, 3, padding=1)), (3, 5, 5)),
    "add_broadcast_channels": (Fn(lambda s, x: x + s.c(x), c=nn.Conv2d(3, 1, 3, padding=1)), (3, 6, 5)),
    "sub_broadcast_relu6": (Fn(lambda s, x: torch.nn.functional.relu6(s.c(x) - x.mean((2, 3), keepdim=True)), c=nn.Conv2d(3, 3, 1)), (3, 4, 4)),
    "const_mul_add_sub_div": (Fn(lambda s, x: ((x * 0.5 + 1.0) - 2.0) / 3.0), (3, 4, 4)),
    "const_rsub_linear": (Fn(lambda s, x: 1.0 - s.l(x), l=nn.Linear(10, 6)), (10,)),
    "const_per_channel_mul_input": (Fn(lambda s, x: s.c(x * s.k), c=nn.Conv2d(3, 4, 1), k=nn.Parameter(torch.tensor([[[0.5]], [[-2.0]], [[3.0]]]))), (3, 4, 4)),
    "const_folded_into_conv": (Fn(lambda s, x: (s.c(x) * 2.0 + 0.5) / 4.0 - 0.1, c=nn.Conv2d(3, 4, 3)), (3, 6, 6)),
    "maximum_minimum": (Fn(lambda s, x: torch.minimum(torch.maximum(s.a(x), s.b(x)), s.k), a=nn.Conv2d(2, 3, 1), b=nn.Conv2d(2, 3, 1), k=nn.Parameter(torch.tensor(0.4))), (2, 4, 4)),
    # --- activations (issue 7) ---
    "sigmoid": (Fn(lambda s, x: torch.sigmoid(s.c(x)), c=nn.Conv2d(3, 4, 1)), (3, 5, 5)),
    "tanh": (Fn(lambda s, x: torch.tanh(s.l(x)), l=nn.Linear(12, 8)), (12,)),
    "silu": (Fn(lambda s, x: torch.nn.functional.silu(s.c(x)), c=nn.Conv2d(3, 4, 3, padding=1)), (3, 5, 5)),
    "hardswish": (Fn(lambda s, x: torch.nn.functional.hardswish(s.c(x)), c=nn.Conv2d(3, 6, 1)), (3, 5, 5)),
    "hardsigmoid": (Fn(lambda s, x: torch.nn.functional.hardsigmoid(s.c(x)), c=nn.Conv2d(3, 6, 1)), (3, 5, 5)),
    "leaky_relu": (Fn(lambda s, x: torch.nn.functional.leaky_relu(s.c(x), 0.1), c=nn.Conv2d(3, 4, 1)), (3, 5, 5)),
    "prelu_per_channel": (Fn(lambda s, x: s.p(s.c(x)), c=nn.Conv2d(3, 4, 1), p=nn.PReLU(4, 0.2)), (3, 5, 5)),
    "prelu_single": (Fn(lambda s, x: s.p(x), p=nn.PReLU()), (3, 4, 4)),
    "clamp_bounds_exclude_zero": (Fn(lambda s, x: torch.clamp(s.c(x), 0.2, 0.9) + torch.clamp(s.c(x), max=-0.1), c=nn.Conv2d(3, 3, 1)), (3, 4, 4)),
    "gelu_erf": (Fn(lambda s, x: torch.nn.functional.gelu(s.c(x)), c=nn.Conv2d(3, 4, 1)), (3, 4, 4)),
    "gelu_tanh": (Fn(lambda s, x: torch.nn.functional.gelu(s.l(x), approximate="tanh"), l=nn.Linear(10, 6)), (10,)),
    # --- shape and data movement (issue 7) ---
    "concat_channels_requant": (Fn(lambda s, x: torch.cat([s.a(x), 3 * x], 1), a=nn.Conv2d(3, 2, 1)), (3, 4, 4)),
    "concat_width": (Fn(lambda s, x: torch.cat([x, s.a(x)], dim=3), a=nn.Conv2d(3, 3, 1)), (3, 4, 5)),
    "concat_linear": (Fn(lambda s, x: s.b(torch.cat([s.a(x), x], 1)), a=nn.Linear(6, 4), b=nn.Linear(10, 3)), (6,)),
    "pad_constant": (Fn(lambda s, x: s.c(torch.nn.functional.pad(x, (1, 2, 0, 1)) + 0.0), c=nn.Conv2d(3, 3, 1)), (3, 4, 4)),
    "pad_value_channels": (Fn(lambda s, x: torch.nn.functional.pad(x, (0, 0, 0, 0, 1, 1), value=0.5)), (2, 3, 3)),
    "slice_split_chunk": (Fn(lambda s, x: torch.split(x, [1, 2], 1)[1] + torch.chunk(x, 3, 1)[0]), (3, 4, 4)),
    "slice_strided_select": (Fn(lambda s, x: x[:, 1:, ::2, 1:] * x[:, 0:1, ::2, :-1]), (3, 5, 6)),
    "select_reshape": (Fn(lambda s, x: s.l(x[:, 1])), (3, 4), ),
    "permute_moves_data": (Fn(lambda s, x: s.c(x.permute(0, 1, 3, 2)), c=nn.Conv2d(3, 4, 1)), (3, 4, 5)),
    "permute_3d_flatten": (Fn(lambda s, x: s.l(torch.flatten(x.permute(0, 2, 1), 1)), l=nn.Linear(12, 3)), (3, 4)),
    "squeeze_unsqueeze": (Fn(lambda s, x: s.c(x.unsqueeze(2)).squeeze(2)), (3, 5)),
    "upsample_nearest2x": (Fn(lambda s, x: torch.nn.functional.interpolate(s.c(x), scale_factor=2, mode="nearest"), c=nn.Conv2d(2, 3, 1)), (2, 3, 4)),
    "upsample_nearest_size": (Fn(lambda s, x: torch.nn.functional.interpolate(x, size=(6, 12), mode="nearest")), (2, 3, 4)),
    # --- convolutions (issue 7) ---
    "conv1d_bn_relu_pool_stack": (Fn(lambda s, x: s.l(torch.relu(s.c2(torch.nn.functional.max_pool1d(torch.relu(s.b1(s.c1(x))), 2))).mean(-1)),
                                  c1=nn.Conv1d(2, 6, 5, stride=2, padding=2), b1=nn.BatchNorm1d(6), c2=nn.Conv1d(6, 4, 3, dilation=2, groups=2),
                                  l=nn.Identity()), (2, 40)),
    "conv1d_alone": (Fn(lambda s, x: s.c(x), c=nn.Conv1d(3, 5, 3, padding=1)), (3, 12)),
    # --- pooling (issue 7) ---
    "avg_pool_count_include_pad": (Fn(lambda s, x: torch.nn.functional.avg_pool2d(s.c(x), 3, 2, 1), c=nn.Conv2d(3, 3, 1)), (3, 7, 8)),
    "avg_pool_exclude_pad_same": (Fn(lambda s, x: torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)), (3, 5, 5)),
    "avg_pool_ceil": (Fn(lambda s, x: torch.nn.functional.avg_pool2d(x, 2, 2, ceil_mode=True)), (2, 6, 6)),
    "max_pool_ceil_padded": (Fn(lambda s, x: torch.nn.functional.max_pool2d(x, 3, 2, 1, ceil_mode=True)), (2, 8, 8)),
    "adaptive_avg_2x2": (Fn(lambda s, x: torch.nn.functional.adaptive_avg_pool2d(s.c(x), (2, 3)), c=nn.Conv2d(2, 3, 1)), (2, 6, 6)),
    "softmax_middle_axis": (Fn(lambda s, x: torch.softmax(x, dim=2)), (3, 5, 4)),
    "maximum_linear": (Fn(lambda s, x: torch.maximum(s.a(x), s.b(x)), a=nn.Linear(8, 5), b=nn.Linear(8, 5)), (8,)),
    # --- reductions and heads (issue 7) ---
    "mean_channels_keepdim": (Fn(lambda s, x: s.c(x).mean(1, keepdim=True), c=nn.Conv2d(3, 4, 1)), (3, 5, 6)),
    "mean_channels_width": (Fn(lambda s, x: s.c(x).mean((1, 3)), c=nn.Conv2d(3, 4, 1)), (3, 5, 6)),
    "mean_height": (Fn(lambda s, x: x.mean(2)), (3, 4, 5)),
    "mean_three_axes_keepdim": (Fn(lambda s, x: s.c(x).mean((1, 2, 3), keepdim=True), c=nn.Conv2d(3, 4, 3)), (3, 6, 5)),
    "mean_sequence": (Fn(lambda s, x: torch.tanh(x).mean(1)), (6, 8)),
    "group_norm_two_groups": (Fn(lambda s, x: s.n(s.c(x)), c=nn.Conv2d(3, 8, 3, padding=1), n=nn.GroupNorm(2, 8)), (3, 5, 5)),
    "group_norm_global_1d": (Fn(lambda s, x: s.n(s.c(x)), c=nn.Conv1d(4, 6, 3), n=nn.GroupNorm(1, 6)), (4, 12)),
    "amax_spatial": (Fn(lambda s, x: s.c(x).amax((2, 3)), c=nn.Conv2d(3, 4, 3)), (3, 6, 6)),
    "amax_height_keepdim": (Fn(lambda s, x: s.c(x).amax(2, keepdim=True), c=nn.Conv2d(3, 4, 1)), (3, 5, 6)),
    "amax_channels": (Fn(lambda s, x: s.c(x).amax(1), c=nn.Conv2d(3, 4, 1)), (3, 4, 5)),
    "amax_three_axes": (Fn(lambda s, x: s.c(x).amax((1, 2, 3), keepdim=True), c=nn.Conv2d(3, 4, 3)), (3, 6, 5)),
    "max_dim_values_sequence": (Fn(lambda s, x: torch.max(s.l(x), dim=1).values, l=nn.Linear(8, 6)), (7, 8)),
    "argmax_classes": (Fn(lambda s, x: s.l(x).argmax(1), l=nn.Linear(12, 5)), (12,)),
    "argmax_channels_keepdim": (Fn(lambda s, x: s.c(x).argmax(1, keepdim=True), c=nn.Conv2d(3, 4, 1)), (3, 4, 5)),
    "argmax_width": (Fn(lambda s, x: x.argmax(3)), (3, 4, 5)),
    "log_softmax": (Fn(lambda s, x: torch.log_softmax(s.l(x), 1), l=nn.Linear(10, 7)), (10,)),
    "log_softmax_channels_4d": (Fn(lambda s, x: torch.log_softmax(x, dim=1)), (5, 3, 2)),
    "log_softmax_middle_axis": (Fn(lambda s, x: torch.nn.functional.log_softmax(2 * x, dim=2)), (3, 6, 4)),
    # --- resampling (issue 7) ---
    "upsample_bilinear2x": (Fn(lambda s, x: torch.nn.functional.interpolate(s.c(x), scale_factor=2, mode="bilinear"),
                               c=nn.Conv2d(2, 3, 1)), (2, 3, 4)),
    "upsample_bilinear_size_3x": (Fn(lambda s, x: torch.nn.functional.interpolate(x, size=(9, 7), mode="bilinear")), (2, 3, 5)),
    "upsample_bilinear_align_corners": (Fn(lambda s, x: torch.nn.functional.interpolate(
        x, size=(7, 10), mode="bilinear", align_corners=True)), (2, 4, 5)),
    # --- transposed convolution (issue 7) ---
    "conv_transpose_2x2_s2": (Fn(lambda s, x: s.c(x), c=nn.ConvTranspose2d(4, 6, 2, stride=2)), (4, 5, 5)),
    "conv_transpose_s2_p1_op1_relu": (Fn(lambda s, x: torch.relu(s.c(x)), c=nn.ConvTranspose2d(
        3, 5, 3, stride=2, padding=1, output_padding=1)), (3, 4, 5)),
    "conv_transpose_bn_relu6": (Fn(lambda s, x: torch.nn.functional.relu6(s.b(s.c(x))), c=nn.ConvTranspose2d(
        3, 4, 4, stride=2, padding=1, bias=False), b=nn.BatchNorm2d(4)), (3, 4, 4)),
    "conv_transpose_clamp": (Fn(lambda s, x: torch.clamp(s.c(x), 0.2, 0.9), c=nn.ConvTranspose2d(3, 4, 3, stride=2)), (3, 3, 4)),
    "conv_transpose_output_padding_past_padding": (Fn(lambda s, x: s.c(x), c=nn.ConvTranspose2d(
        2, 3, (3, 2), stride=3, output_padding=(2, 1))), (2, 3, 4)),
    "conv_transpose_grouped_dilated": (Fn(lambda s, x: s.c(x), c=nn.ConvTranspose2d(
        4, 6, 3, padding=2, dilation=2, groups=2)), (4, 4, 5)),
    # --- real-model ops: arithmetic, normalization, attention, gathers, padding ---
    "abs": (Fn(lambda s, x: torch.abs(s.c(x)), c=nn.Conv2d(3, 4, 1)), (3, 5, 5)),
    "sqrt_frame_energy": (Fn(lambda s, x: torch.sqrt((x ** 2).mean(-1) + 1e-6)), (4, 16)),
    "vector_norm_sqrt": (Fn(lambda s, x: torch.linalg.vector_norm(s.l(x), dim=-1, keepdim=True) * s.l(x), l=nn.Linear(8, 6)), (8,)),
    "rsqrt_of_square": (Fn(lambda s, x: torch.rsqrt(x * x + 1.0)), (12,)),
    "layer_norm": (Fn(lambda s, x: s.n(s.l(x)), l=nn.Linear(12, 16), n=nn.LayerNorm(16)), (6, 12)),
    "layer_norm_4d_channels_last": (Fn(lambda s, x: s.n(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), n=nn.LayerNorm(5)), (5, 3, 4)),
    "masked_mean_div": (Fn(lambda s, x: (x * torch.sigmoid(s.g(x))).sum(1) / torch.sigmoid(s.g(x)).sum(1).clamp(min=1e-9),
                           g=nn.Linear(8, 1)), (6, 8)),
    "attention_3d": (Fn(lambda s, x: torch.softmax(s.q(x) @ s.k(x).transpose(-1, -2) * 0.5, -1) @ s.v(x),
                        q=nn.Linear(8, 8), k=nn.Linear(8, 8), v=nn.Linear(8, 8)), (6, 8)),
    "attention_4d_heads": (Fn(lambda s, x: (torch.softmax(s.q(x).view(-1, 6, 2, 4).transpose(1, 2) @ s.k(x).view(-1, 6, 2, 4).permute(0, 2, 3, 1), -1)
                                            @ s.v(x).view(-1, 6, 2, 4).transpose(1, 2)).transpose(1, 2).reshape(-1, 6, 8),
                              q=nn.Linear(8, 8), k=nn.Linear(8, 8), v=nn.Linear(8, 8)), (6, 8)),
    "gather_reorder_channels": (Fn(lambda s, x: s.c(x)[:, torch.tensor([3, 0, 2, 2])], c=nn.Conv2d(3, 4, 1)), (3, 4, 5)),
    "l2_normalize_last": (Fn(lambda s, x: torch.nn.functional.normalize(s.l(x), dim=-1), l=nn.Linear(10, 8)), (10,)),
    "l2_normalize_channels_4d": (Fn(lambda s, x: torch.nn.functional.normalize(s.c(x), dim=1), c=nn.Conv2d(3, 6, 1)), (3, 4, 4)),
    "sum_axis": (Fn(lambda s, x: s.c(x).sum(1), c=nn.Conv2d(3, 4, 1)), (3, 4, 5)),
    "sum_sequence_keepdim": (Fn(lambda s, x: torch.tanh(x).sum(1, keepdim=True)), (7, 5)),
    "reflect_pad_1d_conv": (Fn(lambda s, x: s.c(torch.nn.functional.pad(x, (2, 2), mode="reflect")), c=nn.Conv1d(3, 4, 3)), (3, 10)),
    "reflect_pad_2d": (Fn(lambda s, x: torch.nn.functional.pad(s.c(x), (1, 2, 2, 1), mode="reflect"), c=nn.Conv2d(2, 3, 1)), (2, 5, 6)),
    "replicate_pad_2d": (Fn(lambda s, x: torch.nn.functional.pad(s.c(x), (2, 1, 0, 3), mode="replicate"), c=nn.Conv2d(2, 3, 1)), (2, 4, 5)),
    "replicate_pad_edge_1": (Fn(lambda s, x: torch.nn.functional.pad(x, (1, 1, 1, 0), mode="replicate")), (2, 4, 5)),
    "lstm_cell": (Fn(lambda s, x: s.cell(x)[1]), (10,)),
}


CASES["select_reshape"][0].l = nn.Linear(4, 2)
torch.manual_seed(0)
CASES["lstm_cell"][0].cell = nn.LSTMCell(10, 12)
CASES["squeeze_unsqueeze"][0].c = nn.Conv2d(3, 4, 1)
with torch.no_grad():   # PReLU slopes that differ per channel (one negative)
    CASES["prelu_per_channel"][0].p.weight.copy_(torch.tensor([0.25, -0.1, 0.5, 0.01]))
    bn = CASES["conv_transpose_bn_relu6"][0].b   # a batch norm that does something
    bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
    bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.0, 0.8]))
    bn.weight.copy_(torch.tensor([1.5, 0.7, -1.0, 1.2]))


INT16_CASES = ["conv3x3", "conv_stride_dilation", "depthwise", "depthwise_multiplier2", "grouped", "conv_relu6",
               "linear_relu", "conv_pools_16x8", "add_relu", "flatten_linear",
               # 16x8 forms of the real-model ops: mul, sub, sigmoid, tanh, mean, sum, abs, batch_matmul
               "mul_two_tensors_relu", "sigmoid", "tanh", "abs", "layer_norm", "attention_3d", "sum_axis", "lstm_cell"]
CASES["conv_pools_16x8"] = (Fn(lambda s, x: torch.nn.functional.avg_pool2d(torch.nn.functional.max_pool2d(s.c(x), 3, 2, 1), 2).mean((2, 3)),
                               c=nn.Conv2d(3, 6, 3, padding=1)), (3, 9, 9))
