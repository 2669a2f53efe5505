/*
 * Board interface: everything app/ and protocol/ need from the hardware.
 *
 * A board is one directory boards/<name>/ with a board.c implementing this
 * header and a board.mk naming the toolchain, CPU flags and linker script.
 * boards/host/ implements it on a PC (stdin/stdout) for tests.
 */
#ifndef BOARD_H
#define BOARD_H

#include <stddef.h>
#include <stdint.h>

/* What one tick of ticks_read() is (sent in HELLO, docs/protocol.md). */
enum tick_kind {
    TICK_KIND_TIM2 = 0,        /* TIM2 ticks; under QEMU -icount shift=0 one per instruction */
    TICK_KIND_DWT = 1,         /* DWT CYCCNT: CPU clock cycles on silicon */
    TICK_KIND_HOST_NS = 2,     /* host test build: nanoseconds of a monotonic clock */
    TICK_KIND_SYSTICK = 3,     /* SysTick (24 bits) at the CPU clock */
    TICK_KIND_CMSDK_TIMER = 4, /* CMSDK APB timer at its PCLK */
    TICK_KIND_NRF_TIMER = 5    /* nRF51 TIMER0 at 16 MHz */
};

/* Clocks, UART (interrupt-driven receive), cost counter. Sends nothing. */
void board_init(void);

/* Blocking write of n bytes to the serial link. */
void uart_write(const uint8_t *data, size_t n);

/* Non-blocking: 1 and *b set if the receive ring buffer held a byte, else 0. */
int uart_read_byte(uint8_t *b);

/* Enable (1) or mask (0) the UART receive interrupt. Masked while the runtime
 * computes, so no interrupt handler adds ticks to a measurement; bytes then
 * wait in the UART (QEMU holds them back; silicon keeps one, see README). */
void uart_rx_irq_enable(int enable);

/* Sleep until an interrupt, unless a received byte is already waiting
 * (checked with interrupts masked, so a byte arriving just before the WFI
 * cannot be missed). */
void board_wait_for_interrupt(void);

/* Cost counter: ticks_start() marks a start, ticks_read() returns the ticks
 * since the last ticks_start() (32-bit, wrap-safe). */
void ticks_start(void);
uint32_t ticks_read(void);

extern uint8_t tick_kind; /* enum tick_kind, chosen at board_init() */
extern uint32_t tick_hz;  /* nominal tick frequency in Hz */
extern const char board_name[];

/* Linker-derived RAM figures (0 where not known, e.g. the host build). */
uint32_t board_ram_static_bytes(void); /* .data + .bss + reserved stack */
uint32_t board_stack_size(void);       /* reserved stack */
uint32_t board_stack_peak(void);       /* stack high-water mark (painted stack) */

/* Counters of bytes lost before the protocol saw them (ring full, UART overrun). */
uint32_t board_rx_dropped(void);

#endif /* BOARD_H */
