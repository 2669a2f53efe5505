/*
 * MPS3 AN547 start-up: vector table (16 core exceptions + the SSE-300's 32
 * internal and the FPGA's 96 expansion interrupts) and reset handler.
 * Every fault or unexpected interrupt resets the chip.
 */
#include <stdint.h>

#include "cortexm.h"

extern uint32_t _estack;
void Reset_Handler(void);
void Default_Handler(void);
void UART0_IRQHandler(void); /* board.c */

#define IRQ_COUNT (32 + 96)
#define D         Default_Handler

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16 + IRQ_COUNT])(void) = {
    (void (*)(void)) & _estack,           Reset_Handler, [2 ... 16 + 42] = D,
    [16 + 43] = UART0_IRQHandler, /* AN547: UART0 combined = IRQ 43 */
    [16 + 44 ... 16 + IRQ_COUNT - 1] = D,
};
#undef D

__attribute__((noreturn)) void Reset_Handler(void)
{
    /* FPU and Helium (MVE): full access for CP10/CP11 before any use. */
    SCB_CPACR |= 0xFu << 20;
    CPU_DSB_ISB();
    cortexm_start();
}
