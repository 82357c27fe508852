/* Minimal ARM semihosting helpers (see semihost.h). */
#include "semihost.h"

#define SYS_OPEN           0x01u
#define SYS_CLOSE          0x02u
#define SYS_WRITE0         0x04u
#define SYS_WRITE          0x05u
#define SYS_READ           0x06u
#define SYS_FLEN           0x0Cu
#define SYS_EXIT_EXTENDED  0x20u

#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int32_t semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

static size_t cstr_len(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        ++n;
    }
    return n;
}

void semihost_write0(const char *s)
{
    (void)semihost_call(SYS_WRITE0, s);
}

int semihost_open(const char *path, int mode)
{
    uint32_t block[3];
    block[0] = (uint32_t)(uintptr_t)path;
    block[1] = (uint32_t)mode;
    block[2] = (uint32_t)cstr_len(path);
    return (int)semihost_call(SYS_OPEN, block);
}

long semihost_read(int fd, void *buf, size_t len)
{
    uint32_t block[3];
    int32_t not_read;
    block[0] = (uint32_t)fd;
    block[1] = (uint32_t)(uintptr_t)buf;
    block[2] = (uint32_t)len;
    not_read = semihost_call(SYS_READ, block);
    if (not_read < 0 || (uint32_t)not_read > len) {
        return -1;
    }
    return (long)(len - (uint32_t)not_read);
}

long semihost_write(int fd, const void *buf, size_t len)
{
    uint32_t block[3];
    int32_t not_written;
    block[0] = (uint32_t)fd;
    block[1] = (uint32_t)(uintptr_t)buf;
    block[2] = (uint32_t)len;
    not_written = semihost_call(SYS_WRITE, block);
    if (not_written < 0 || (uint32_t)not_written > len) {
        return -1;
    }
    return (long)(len - (uint32_t)not_written);
}

int semihost_close(int fd)
{
    uint32_t block[1];
    block[0] = (uint32_t)fd;
    return semihost_call(SYS_CLOSE, block) == 0 ? 0 : -1;
}

long semihost_flen(int fd)
{
    uint32_t block[1];
    block[0] = (uint32_t)fd;
    return (long)semihost_call(SYS_FLEN, block);
}

void semihost_exit_extended(int status)
{
    uint32_t block[2];
    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)status;
    (void)semihost_call(SYS_EXIT_EXTENDED, block);
    for (;;) {
        /* Not reached under QEMU; spin if the debugger ignores the call. */
    }
}
