/*
 * MPS2 AN500 start-up: vector table (16 core exceptions + 32 interrupts)
 * and reset handler. Every fault or unexpected interrupt resets the chip.
 */
#include <stdint.h>

#include "cortexm.h"

extern uint32_t _estack;
void Reset_Handler(void);
void Default_Handler(void);
void UART0RX_IRQHandler(void); /* board.c */

#define IRQ_COUNT 32
#define D         Default_Handler

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16 + IRQ_COUNT])(void) = {
    (void (*)(void)) & _estack,          Reset_Handler, [2 ... 15] = D,
    [16 + 0] = UART0RX_IRQHandler, /* AN500: UART0 RX = IRQ 0 */
    [16 + 1 ... 16 + IRQ_COUNT - 1] = D,
};
#undef D

__attribute__((noreturn)) void Reset_Handler(void)
{
    /* FPU: full access for CP10/CP11 before any floating-point instruction. */
    SCB_CPACR |= 0xFu << 20;
    CPU_DSB_ISB();
    cortexm_start();
}
