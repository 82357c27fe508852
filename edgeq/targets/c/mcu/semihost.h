/*
 * Minimal ARM semihosting helpers for the edgeq Cortex-M harness.
 *
 * M-profile semihosting: `bkpt 0xAB`, r0 = operation, r1 = argument block,
 * result in r0.  QEMU must run with -semihosting-config enable=on,target=native.
 */
#ifndef EDGEQ_SEMIHOST_H
#define EDGEQ_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* SYS_OPEN modes (ISO C fopen() mode index). */
#define SEMIHOST_MODE_R   0
#define SEMIHOST_MODE_RB  1
#define SEMIHOST_MODE_W   4
#define SEMIHOST_MODE_WB  5
#define SEMIHOST_MODE_AB  9

/* Exit codes used by the harness and the startup code. */
#define EDGEQ_EXIT_OK          0
#define EDGEQ_EXIT_IO          2  /* semihosting open/read/write failed */
#define EDGEQ_EXIT_INVOKE      3  /* MODEL_INVOKE returned non-zero */
#define EDGEQ_EXIT_FAULT       4  /* unexpected exception (HardFault, ...) */
#define EDGEQ_EXIT_INPUT_SIZE  5  /* input file size not a multiple of INPUT_SIZE */

/* Print a NUL-terminated string (SYS_WRITE0); QEMU 7.2 writes it to its stderr. */
void semihost_write0(const char *s);

/* Open a host file (SYS_OPEN). Returns a handle >= 0, or -1 on error. */
int semihost_open(const char *path, int mode);

/* Read up to len bytes (SYS_READ). Returns the number of bytes read
 * (0 at end of file), or -1 on error. */
long semihost_read(int fd, void *buf, size_t len);

/* Write len bytes (SYS_WRITE). Returns the number of bytes written, or -1. */
long semihost_write(int fd, const void *buf, size_t len);

/* Close a handle (SYS_CLOSE). Returns 0 on success, -1 on error. */
int semihost_close(int fd);

/* Length of an open file in bytes (SYS_FLEN), or -1 on error. */
long semihost_flen(int fd);

/* Stop the emulator; QEMU exits with `status` (SYS_EXIT_EXTENDED). */
void semihost_exit_extended(int status) __attribute__((noreturn));

#endif /* EDGEQ_SEMIHOST_H */
