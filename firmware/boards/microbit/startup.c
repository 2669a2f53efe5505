/*
 * nRF51822 start-up: vector table (16 core exceptions + 32 interrupts,
 * nRF51 RM Table 23) and reset handler. Every fault or unexpected interrupt
 * resets the chip.
 */
#include <stdint.h>

#include "cortexm.h"

extern uint32_t _estack;
void Reset_Handler(void);
void Default_Handler(void);
void UART0_IRQHandler(void); /* board.c */

#define IRQ_COUNT 32
#define D         Default_Handler

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16 + IRQ_COUNT])(void) = {
    (void (*)(void)) & _estack,          Reset_Handler, [2 ... 16 + 1] = D,
    [16 + 2] = UART0_IRQHandler, /* nRF51: UART0 = IRQ 2 */
    [16 + 3 ... 16 + IRQ_COUNT - 1] = D,
};
#undef D

__attribute__((noreturn)) void Reset_Handler(void)
{
    cortexm_start(); /* no FPU on the Cortex-M0 */
}
