/*
 * STM32F100RB start-up: vector table (16 core exceptions + 61 interrupts,
 * RM0041 Table 53) and reset handler. Every fault or unexpected interrupt
 * resets the chip.
 */
#include <stdint.h>

#include "cortexm.h"

extern uint32_t _estack;
void Reset_Handler(void);
void Default_Handler(void);
void USART1_IRQHandler(void); /* board.c */

#define IRQ_COUNT 61
#define D         Default_Handler

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16 + IRQ_COUNT])(void) = {
    (void (*)(void)) & _estack,           Reset_Handler, [2 ... 16 + 36] = D,
    [16 + 37] = USART1_IRQHandler, /* RM0041: USART1 = IRQ 37 */
    [16 + 38 ... 16 + IRQ_COUNT - 1] = D,
};
#undef D

__attribute__((noreturn)) void Reset_Handler(void)
{
    cortexm_start(); /* no FPU on the Cortex-M3 */
}
