/*
 * Startup code for the edgeq harness on QEMU's MPS2 boards (mps2-an385 Cortex-M3,
 * mps2-an386 Cortex-M4F, mps2-an500 Cortex-M7; one memory map).
 *
 * Vector table at 0x0 (section .isr_vector, kept by the linker script),
 * reset handler: enable the FPU (when built for one), copy .data, zero .bss, run main() and
 * stop QEMU with main's return code via SYS_EXIT_EXTENDED.  Any other
 * exception prints its number and the faulting PC, then exits with
 * EDGEQ_EXIT_FAULT.
 */
#include <stdint.h>
#include <string.h>

#include "semihost.h"

/* Linker-script symbols (mps2_an386.ld). */
extern uint32_t _estack;
extern uint8_t _sidata[];
extern uint8_t _sdata[];
extern uint8_t _edata[];
extern uint8_t _sbss[];
extern uint8_t _ebss[];

int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void edgeq_fault_report(const uint32_t *frame, uint32_t ipsr);
void _exit(int status);

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

#define EDGEQ_NUM_EXTERNAL_IRQS 32

typedef void (*edgeq_handler_t)(void);

struct edgeq_vector_table {
    uint32_t *initial_sp;
    edgeq_handler_t system[15];
    edgeq_handler_t irq[EDGEQ_NUM_EXTERNAL_IRQS];
};

__attribute__((section(".isr_vector"), used))
const struct edgeq_vector_table edgeq_vectors = {
    &_estack,
    {
        Reset_Handler,
        NMI_Handler,
        HardFault_Handler,
        MemManage_Handler,
        BusFault_Handler,
        UsageFault_Handler,
        0, 0, 0, 0,            /* reserved */
        SVC_Handler,
        DebugMon_Handler,
        0,                     /* reserved */
        PendSV_Handler,
        SysTick_Handler,
    },
    {
        Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler,
        Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    },
};

#define EDGEQ_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* Full access to CP10/CP11 (the FPU) before any FP instruction runs. */
    EDGEQ_CPACR |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif

    memcpy(_sdata, _sidata, (size_t)((uintptr_t)_edata - (uintptr_t)_sdata));
    memset(_sbss, 0, (size_t)((uintptr_t)_ebss - (uintptr_t)_sbss));

    semihost_exit_extended(main());
}

/* Pick the stack the exception frame was pushed on, then report. */
__attribute__((naked))
void Default_Handler(void)
{
    __asm__ volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mrs r1, ipsr\n\t"
        "b edgeq_fault_report\n\t");
}

static void put_hex32(char *dst, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    int i;
    for (i = 0; i < 8; ++i) {
        dst[i] = digits[(value >> (28 - 4 * i)) & 0xFu];
    }
}

__attribute__((used, noreturn))
void edgeq_fault_report(const uint32_t *frame, uint32_t ipsr)
{
    /* "edgeq: exception 0x........ at pc 0x........\n" */
    char msg[] = "edgeq: exception 0x00000000 at pc 0x00000000\n";
    put_hex32(&msg[19], ipsr & 0x1FFu);
    put_hex32(&msg[36], frame[6]);
    semihost_write0(msg);
    semihost_exit_extended(EDGEQ_EXIT_FAULT);
}

/* newlib's exit()/abort() end here if model code ever calls them. */
void _exit(int status)
{
    semihost_exit_extended(status);
}
