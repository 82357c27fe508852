/*
 * edgeq benchmark harness: runs a generated model on every input sample in a
 * host file and writes the outputs to another host file, via semihosting.
 *
 * Configuration, either
 *   -DEDGEQ_HARNESS_CONFIG='"edgeq_harness_config.h"'   (what qemu.py does:
 *       a generated header that includes the model header and defines the
 *       macros below), or directly on the command line:
 *   -DMODEL_HEADER='"NAME.h"' -DMODEL_INVOKE=NAME_invoke
 *   -DMODEL_INPUT_SIZE=NAME_INPUT_SIZE -DMODEL_OUTPUT_SIZE=NAME_OUTPUT_SIZE
 *   -DEDGEQ_INPUT_PATH='"/abs/in.bin"' -DEDGEQ_OUTPUT_PATH='"/abs/out.bin"'
 *   and, for a model built with its input in its arena (NAME_INPUT_IN_ARENA),
 *   -DMODEL_INPUT_BUFFER=NAME_input -DMODEL_RUN=NAME_run: samples are read
 *   into the arena and the measured call is MODEL_RUN(output).
 *
 * The input file holds N * MODEL_INPUT_SIZE int8 bytes (N from its length);
 * the output file receives N * MODEL_OUTPUT_SIZE int8 bytes.  Each inference
 * is bracketed by bench_start() / bench_stop(), whose entry addresses the
 * instruction-counting QEMU plugin watches.
 *
 * Exit codes: see EDGEQ_EXIT_* in semihost.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "semihost.h"

#ifdef EDGEQ_HARNESS_CONFIG
#include EDGEQ_HARNESS_CONFIG
#else
#include MODEL_HEADER
#endif

#if !defined(MODEL_INVOKE) || !defined(MODEL_INPUT_SIZE) || !defined(MODEL_OUTPUT_SIZE)
#error "edgeq harness: MODEL_INVOKE, MODEL_INPUT_SIZE and MODEL_OUTPUT_SIZE must be defined"
#endif
#if !defined(EDGEQ_INPUT_PATH) || !defined(EDGEQ_OUTPUT_PATH)
#error "edgeq harness: EDGEQ_INPUT_PATH and EDGEQ_OUTPUT_PATH must be defined"
#endif

void bench_start(void);
void bench_stop(void);
void edgeq_layer_mark(int layer);
int main(void);

/*
 * Marker functions.  noipa: never inlined, cloned, folded together (ICF) or
 * analysed as side-effect free; the empty volatile asm keeps every call.
 */
__attribute__((noipa, noinline, used))
void bench_start(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noipa, noinline, used))
void bench_stop(void)
{
    __asm__ volatile("" ::: "memory");
}

/*
 * Called after every layer by the per-layer profile build of a model (never by the shipped
 * code): the plugin records the instruction count at each entry.
 */
__attribute__((noipa, noinline, used))
void edgeq_layer_mark(int layer)
{
    (void)layer;
    __asm__ volatile("" ::: "memory");
}

#ifdef MODEL_INPUT_BUFFER
/* the model keeps its input in its arena: read each sample there, run with MODEL_RUN */
#define EDGEQ_INPUT (MODEL_INPUT_BUFFER())
#else
static int8_t edgeq_input[MODEL_INPUT_SIZE] __attribute__((aligned(16)));
#define EDGEQ_INPUT edgeq_input
#endif
static int8_t edgeq_output[MODEL_OUTPUT_SIZE] __attribute__((aligned(16)));

/* Decimal digits of value at dst, then "\n" and NUL (dst needs 12 bytes). */
static void put_dec_line(char *dst, uint32_t value)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    while (n > 0) {
        *dst++ = digits[--n];
    }
    dst[0] = '\n';
    dst[1] = '\0';
}

int main(void)
{
    const size_t in_size = (size_t)(MODEL_INPUT_SIZE);
    const size_t out_size = (size_t)(MODEL_OUTPUT_SIZE);
    int in_fd;
    int out_fd;
    long in_len;
    uint32_t n_samples;
    uint32_t i;

    in_fd = semihost_open(EDGEQ_INPUT_PATH, SEMIHOST_MODE_RB);
    if (in_fd < 0) {
        semihost_write0("edgeq: cannot open input file " EDGEQ_INPUT_PATH "\n");
        return EDGEQ_EXIT_IO;
    }
    in_len = semihost_flen(in_fd);
    if (in_len < 0 || (size_t)in_len % in_size != 0u) {
        semihost_write0("edgeq: input file size is not a multiple of MODEL_INPUT_SIZE\n");
        (void)semihost_close(in_fd);
        return EDGEQ_EXIT_INPUT_SIZE;
    }
    n_samples = (uint32_t)((size_t)in_len / in_size);

    out_fd = semihost_open(EDGEQ_OUTPUT_PATH, SEMIHOST_MODE_WB);
    if (out_fd < 0) {
        semihost_write0("edgeq: cannot open output file " EDGEQ_OUTPUT_PATH "\n");
        (void)semihost_close(in_fd);
        return EDGEQ_EXIT_IO;
    }

    for (i = 0; i < n_samples; ++i) {
        int rc;
        if (semihost_read(in_fd, EDGEQ_INPUT, in_size) != (long)in_size) {
            semihost_write0("edgeq: short read from input file\n");
            return EDGEQ_EXIT_IO;
        }

        bench_start();
#ifdef MODEL_INPUT_BUFFER
        rc = MODEL_RUN(edgeq_output);
#else
        rc = MODEL_INVOKE(edgeq_input, edgeq_output);
#endif
        bench_stop();

        if (rc != 0) {
            char msg[] = "edgeq: invoke failed on sample 0123456789+\n";
            put_dec_line(&msg[31], i);
            semihost_write0(msg);
            (void)semihost_close(out_fd);
            (void)semihost_close(in_fd);
            return EDGEQ_EXIT_INVOKE;
        }
        if (semihost_write(out_fd, edgeq_output, out_size) != (long)out_size) {
            semihost_write0("edgeq: short write to output file\n");
            return EDGEQ_EXIT_IO;
        }
    }

    (void)semihost_close(out_fd);
    (void)semihost_close(in_fd);
    return EDGEQ_EXIT_OK;
}
