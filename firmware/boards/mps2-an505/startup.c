/*
 * MPS2 AN505 start-up: vector table (16 core exceptions + the IoT Kit's
 * 32 internal and the FPGA's 92 expansion interrupts) and reset handler.
 * Every fault or unexpected interrupt resets the chip.
 */
#include <stdint.h>

#include "cortexm.h"

extern uint32_t _estack;
void Reset_Handler(void);
void Default_Handler(void);

void UART0RX_IRQHandler(void); /* board.c */

#define IRQ_COUNT (32 + 92)
#define D         Default_Handler

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16 + IRQ_COUNT])(void) = {
    (void (*)(void)) & _estack,           Reset_Handler, [2 ... 16 + 41] = D,
    [16 + 42] = UART0RX_IRQHandler, /* AN505: UART0 combined = IRQ 42 */
    [16 + 43 ... 16 + IRQ_COUNT - 1] = D,
};
#undef D

__attribute__((noreturn)) void Reset_Handler(void)
{
    /* FPU: full access for CP10/CP11 before any floating-point instruction. */
    SCB_CPACR |= 0xFu << 20;
    CPU_DSB_ISB();
    cortexm_start();
}
