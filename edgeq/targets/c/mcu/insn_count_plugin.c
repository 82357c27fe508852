/*
 * QEMU TCG plugin (plugin API v1, QEMU 7.x) counting guest instructions
 * executed between two marker addresses, for the edgeq harness.
 *
 * Build (host compiler):  gcc -shared -fPIC -O2 -o insn_count.so insn_count_plugin.c
 * Use:  qemu-system-arm ... -plugin ./insn_count.so,start=0xADDR,stop=0xADDR,out=FILE
 *
 *   start / stop  entry addresses of bench_start() and bench_stop() (as printed
 *                 by arm-none-eabi-nm; the Thumb bit is ignored).
 *   out           file receiving one decimal count per line, one line per
 *                 completed start..stop region (default: stderr).
 *   mark          (optional) entry address of a marker called inside the region
 *                 (the per-layer profile build calls one after every layer).
 *   marks         file receiving, per completed region, one line of the counts
 *                 at each entry of `mark` (instructions since the region's start,
 *                 the mark's first instruction excluded), space separated.
 *
 * A region's count is the number of guest instructions executed from the
 * first instruction of bench_start (included) up to the first instruction of
 * bench_stop (excluded).  Instructions are counted exactly: every translated
 * block adds its instruction count to a counter inline when it starts, and the
 * marker callbacks subtract the part of their block not executed yet.
 * Instructions whose condition fails (IT blocks) count as executed.
 *
 * Debian's QEMU 7.2 ships no qemu-plugin.h, so the few API declarations used
 * here are written out below; they follow the documented v1 plugin API.
 * Marker callbacks carry (instructions from the marker to the end of its
 * block) << 2 | kind, kind 0 = start, 1 = stop, 2 = mark.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API v1 declarations (subset) -------------------------- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* opaque here: never dereferenced */
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
                                              enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags,
                                            void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id,
                                    qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                 size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv);

/* ---- plugin state ------------------------------------------------------ */
static uint64_t insn_count;     /* instructions of every block entered */
static uint64_t start_addr = UINT64_MAX;
static uint64_t stop_addr = UINT64_MAX;
static char *out_path;
static uint64_t mark_addr = UINT64_MAX;
static char *marks_path;

/* growable arrays of counts */
typedef struct {
    uint64_t *data;
    size_t n, cap;
} count_list;

static count_list marks;          /* every mark of every completed region */
static count_list region_marks;   /* per completed region: marks.n at its stop */
static size_t marks_in_region;    /* marks of the region being counted */

static uint64_t region_start;
static int region_active;
static uint64_t *counts;
static size_t n_counts;
static size_t cap_counts;
static size_t unmatched_stops;
static int oom;

static int append(count_list *list, uint64_t value)
{
    if (list->n == list->cap) {
        size_t new_cap = list->cap ? 2 * list->cap : 1024;
        uint64_t *grown = realloc(list->data, new_cap * sizeof *grown);
        if (grown == NULL) {
            oom = 1;
            return -1;
        }
        list->data = grown;
        list->cap = new_cap;
    }
    list->data[list->n++] = value;
    return 0;
}

/*
 * Marker callback.  userdata = (insns from this one to the end of its block,
 * this one included) << 2 | kind.  The block's inline add has already run,
 * so the number of instructions executed before this one is
 * insn_count - remaining.
 */
static void on_marker(unsigned int vcpu_index, void *userdata)
{
    uintptr_t data = (uintptr_t)userdata;
    uint64_t before = insn_count - (uint64_t)(data >> 2);
    unsigned kind = (unsigned)(data & 3u);
    (void)vcpu_index;

    if (kind == 0u) {
        region_start = before;
        region_active = 1;
        marks.n -= marks_in_region;      /* an unfinished region's marks are dropped */
        marks_in_region = 0;
        return;
    }
    if (!region_active) {
        if (kind == 1u) {
            ++unmatched_stops;
        }
        return;
    }
    if (kind == 2u) {
        if (append(&marks, before - region_start) == 0) {
            ++marks_in_region;
        }
        return;
    }
    region_active = 0;
    marks_in_region = 0;
    if (n_counts == cap_counts) {
        size_t new_cap = cap_counts ? 2 * cap_counts : 1024;
        uint64_t *grown = realloc(counts, new_cap * sizeof *grown);
        if (grown == NULL) {
            oom = 1;
            return;
        }
        counts = grown;
        cap_counts = new_cap;
    }
    counts[n_counts++] = before - region_start;
    (void)append(&region_marks, (uint64_t)marks.n);
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    size_t i;
    (void)id;

    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                             &insn_count, (uint64_t)n);
    for (i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        uintptr_t remaining = (uintptr_t)(n - i);
        uintptr_t kind;
        if (vaddr == start_addr) {
            kind = 0u;
        } else if (vaddr == stop_addr) {
            kind = 1u;
        } else if (vaddr == mark_addr) {
            kind = 2u;
        } else {
            continue;
        }
        qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
                                               (void *)((remaining << 2) | kind));
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *userdata)
{
    FILE *f = stderr;
    size_t i;
    (void)id;
    (void)userdata;

    if (out_path != NULL) {
        f = fopen(out_path, "w");
        if (f == NULL) {
            fprintf(stderr, "insn_count: cannot write %s\n", out_path);
            return;
        }
    }
    for (i = 0; i < n_counts; ++i) {
        fprintf(f, "%" PRIu64 "\n", counts[i]);
    }
    if (f != stderr) {
        fclose(f);
    }
    if (marks_path != NULL) {
        FILE *m = fopen(marks_path, "w");
        size_t r, k = 0;
        if (m == NULL) {
            fprintf(stderr, "insn_count: cannot write %s\n", marks_path);
        } else {
            for (r = 0; r < region_marks.n; ++r) {
                const char *sep = "";
                for (; k < region_marks.data[r]; ++k) {
                    fprintf(m, "%s%" PRIu64, sep, marks.data[k]);
                    sep = " ";
                }
                fprintf(m, "\n");
            }
            fclose(m);
        }
    }
    if (oom) {
        fprintf(stderr, "insn_count: out of memory, counts truncated\n");
    }
    if (region_active || unmatched_stops) {
        fprintf(stderr, "insn_count: %d unfinished region(s), %zu unmatched stop(s)\n",
                region_active, unmatched_stops);
    }
    fprintf(stderr, "insn_count: %" PRIu64 " instructions in total\n", insn_count);
    free(counts);
    counts = NULL;
    free(marks.data);
    free(region_marks.data);
}

static int parse_addr(const char *text, uint64_t *out)
{
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 0);
    if (end == text || *end != '\0') {
        return -1;
    }
    *out = (uint64_t)value & ~(uint64_t)1; /* drop the Thumb bit */
    return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    int i;
    (void)info;

    for (i = 0; i < argc; ++i) {
        const char *arg = argv[i];
        if (strncmp(arg, "start=", 6) == 0) {
            if (parse_addr(arg + 6, &start_addr) != 0) {
                fprintf(stderr, "insn_count: bad address in '%s'\n", arg);
                return -1;
            }
        } else if (strncmp(arg, "stop=", 5) == 0) {
            if (parse_addr(arg + 5, &stop_addr) != 0) {
                fprintf(stderr, "insn_count: bad address in '%s'\n", arg);
                return -1;
            }
        } else if (strncmp(arg, "mark=", 5) == 0) {
            if (parse_addr(arg + 5, &mark_addr) != 0) {
                fprintf(stderr, "insn_count: bad address in '%s'\n", arg);
                return -1;
            }
        } else if (strncmp(arg, "marks=", 6) == 0) {
            size_t len = strlen(arg + 6);
            free(marks_path);
            marks_path = malloc(len + 1);
            if (marks_path == NULL) {
                return -1;
            }
            memcpy(marks_path, arg + 6, len + 1);
        } else if (strncmp(arg, "out=", 4) == 0) {
            size_t len = strlen(arg + 4);
            free(out_path);
            out_path = malloc(len + 1);
            if (out_path == NULL) {
                return -1;
            }
            memcpy(out_path, arg + 4, len + 1);
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s'\n", arg);
            return -1;
        }
    }
    if (start_addr == UINT64_MAX || stop_addr == UINT64_MAX || start_addr == stop_addr) {
        fprintf(stderr, "insn_count: need distinct start= and stop= addresses\n");
        return -1;
    }

    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
