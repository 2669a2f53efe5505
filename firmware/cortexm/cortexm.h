/*
 * Pieces every Cortex-M board shares: core registers (ARMv6-M / v7-M /
 * v8-M architecture manuals, "System Control Space"), the few CPU
 * instructions the boards use, the C start-up, and the receive ring.
 *
 * Register access and CPU instructions are macros so a board.c can be
 * compiled for the host with a simulated register file (BOARD_REGISTER_TEST,
 * tests/firmware/test_board_registers.py).
 */
#ifndef CORTEXM_H
#define CORTEXM_H

#include <stdint.h>

#ifndef REG
#define REG(addr) (*(volatile uint32_t *)(addr))
#endif

#ifndef BOARD_REGISTER_TEST
#define CPU_DSB_ISB() __asm volatile("dsb\n isb" ::: "memory")
#define CPU_IRQ_OFF() __asm volatile("cpsid i" ::: "memory")
#define CPU_IRQ_ON()  __asm volatile("cpsie i\n isb" ::: "memory")
#define CPU_WFI()     __asm volatile("dsb\n wfi" ::: "memory") /* wakes on a pending IRQ even when masked */
#define CPU_DSB()     __asm volatile("dsb" ::: "memory")
#else
#define CPU_DSB_ISB() ((void)0)
#define CPU_IRQ_OFF() ((void)0)
#define CPU_IRQ_ON()  ((void)0)
#define CPU_WFI()     ((void)0)
#define CPU_DSB()     ((void)0)
#endif

/* NVIC (every profile: ISER/ICER at the same addresses). */
#define NVIC_ISER(n) REG(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) REG(0xE000E180u + 4u * (n))
#define SCB_AIRCR    REG(0xE000ED0Cu)
#define SCB_CPACR    REG(0xE000ED88u) /* v7-M/v8-M with an FPU (or MVE) */

/* SysTick: 24-bit down-counter (present on every core here but the nRF51's M0). */
#define SYST_CSR               REG(0xE000E010u)
#define SYST_RVR               REG(0xE000E014u)
#define SYST_CVR               REG(0xE000E018u)
#define SYST_CSR_ENABLE        (1u << 0)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define SYST_MASK              0x00FFFFFFu

void nvic_irq_set(uint32_t irqn, int on);

/* Start SysTick free-running from the CPU clock: SYST_CVR counts down from
 * 0xFFFFFF; ticks elapsed = (earlier - later) & SYST_MASK. */
void systick_start(void);

/* C run-time start: .data copied, .bss zeroed, stack painted, constructors
 * run, then main(). Called by each board's Reset_Handler once the core
 * (FPU, ...) is set up. Never returns. */
__attribute__((noreturn)) void cortexm_start(void);

/* Receive ring between a board's UART interrupt handler and the main loop.
 * The handler checks rx_ring_full() before it reads a byte: when full it
 * leaves the byte in the UART and calls rx_ring_throttle(), which masks the
 * UART interrupt until the main loop has drained half the ring.
 * The board supplies board_uart_irq(on): (un)mask its UART interrupt. */
int rx_ring_full(void);
void rx_ring_put(uint8_t b);
void rx_ring_throttle(void);
void rx_ring_overrun(void); /* a byte the UART lost: counted in board_rx_dropped() */
void board_uart_irq(int on);

/* Reset the chip (SYSRESETREQ); every fault handler ends here. */
__attribute__((noreturn)) void board_fault_reset(void);

#endif /* CORTEXM_H */
