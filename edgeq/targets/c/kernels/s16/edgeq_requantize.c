/* edgeq kernel: change of integer type between int8 and int16 regions of a mixed-precision
 * model (TFLite QUANTIZE from an integer tensor), saturating to the output type. */
#include "edgeq_requantize.h"
#include "edgeq_support.h"

/* multiply_by_quantized_multiplier(x + input_offset) + output_offset, clamped to [lo, hi]. */
static int32_t requantize_one(const edgeq_requantize_params *p, int32_t x, int32_t lo, int32_t hi)
{
    /* clamp(r + offset, lo, hi) == clamp(r, lo - offset, hi - offset) + offset, without the
     * int32 overflow r + offset could have */
    const int32_t rlo = lo - p->output_offset;
    const int32_t rhi = hi - p->output_offset;
    int32_t r = edgeq_multiply_by_quantized_multiplier(x + p->input_offset, p->multiplier,
                                                       p->shift);
    r = r < rlo ? rlo : r;
    r = r > rhi ? rhi : r;
    return r + p->output_offset;
}

void edgeq_requantize_s8_s16(const edgeq_requantize_params *p, const int8_t *input,
                             int16_t *EDGEQ_RESTRICT output)
{
    int32_t i;

    for (i = 0; i < p->size; ++i) {
        output[i] = (int16_t)requantize_one(p, input[i], EDGEQ_INT16_MIN, EDGEQ_INT16_MAX);
    }
}

void edgeq_requantize_s16_s8(const edgeq_requantize_params *p, const int16_t *input,
                             int8_t *EDGEQ_RESTRICT output)
{
    int32_t i;

    for (i = 0; i < p->size; ++i) {
        output[i] = (int8_t)requantize_one(p, input[i], EDGEQ_INT8_MIN, EDGEQ_INT8_MAX);
    }
}
