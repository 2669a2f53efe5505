/*
 * STM32F405 start-up: vector table and reset handler (FPU on, .data copied,
 * .bss zeroed, stack painted for the high-water mark, C++ constructors run).
 * Every fault or unexpected interrupt resets the chip, so the host sees a
 * boot HELLO rather than a silent device.
 */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);
void board_fault_reset(void);
void Reset_Handler(void);

void Default_Handler(void)
{
    board_fault_reset();
}

/* Weak aliases: board.c defines the handlers it uses. */
#define WEAK_DEFAULT __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) WEAK_DEFAULT;
void HardFault_Handler(void) WEAK_DEFAULT;
void MemManage_Handler(void) WEAK_DEFAULT;
void BusFault_Handler(void) WEAK_DEFAULT;
void UsageFault_Handler(void) WEAK_DEFAULT;
void SVC_Handler(void) WEAK_DEFAULT;
void DebugMon_Handler(void) WEAK_DEFAULT;
void PendSV_Handler(void) WEAK_DEFAULT;
void SysTick_Handler(void) WEAK_DEFAULT;
void TIM2_IRQHandler(void) WEAK_DEFAULT;
void USART1_IRQHandler(void) WEAK_DEFAULT;

#define IRQ_COUNT 82 /* STM32F405: positions 0..81 (RM0090 Table 61) */
#define D         Default_Handler

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16 + IRQ_COUNT])(void) = {
    (void (*)(void)) & _estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    D,
    D,
    D,
    D,
    SVC_Handler,
    DebugMon_Handler,
    D,
    PendSV_Handler,
    SysTick_Handler,
    /* IRQs: 28 = TIM2, 37 = USART1 */
    /*  0 */ D,
    D,
    D,
    D,
    D,
    D,
    D,
    D,
    /*  8 */ D,
    D,
    D,
    D,
    D,
    D,
    D,
    D,
    /* 16 */ D,
    D,
    D,
    D,
    D,
    D,
    D,
    D,
    /* 24 */ D,
    D,
    D,
    D,
    TIM2_IRQHandler,
    D,
    D,
    D,
    /* 32 */ D,
    D,
    D,
    D,
    D,
    USART1_IRQHandler,
    D,
    D,
    /* 40 */ D,
    D,
    D,
    D,
    D,
    D,
    D,
    D,
    /* 48 */ D,
    D,
    D,
    D,
    D,
    D,
    D,
    D,
    /* 56 */ D,
    D,
    D,
    D,
    D,
    D,
    D,
    D,
    /* 64 */ D,
    D,
    D,
    D,
    D,
    D,
    D,
    D,
    /* 72 */ D,
    D,
    D,
    D,
    D,
    D,
    D,
    D,
    /* 80 */ D,
    D,
};
#undef D

#define STACK_PAINT 0xA5A5A5A5u

__attribute__((noreturn)) void Reset_Handler(void)
{
    /* FPU: full access for CP10/CP11 before any floating-point instruction. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n isb" ::: "memory");

    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++)
        *dst = 0;

    /* Paint the stack below the current frame (64 bytes of margin). */
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (dst = &_sstack; dst < sp - 16; dst++)
        *dst = STACK_PAINT;

    for (void (**ctor)(void) = __init_array_start; ctor < __init_array_end; ctor++)
        (*ctor)();

    main();
    board_fault_reset(); /* main never returns */
    for (;;)
        ;
}
