/*
 * Arm MPS2+ with the AN505 FPGA image (Cortex-M33, IoT Kit subsystem).
 *
 * The core starts in the Secure state with the SAU off, so every address
 * is Secure: the firmware uses the Secure aliases (bit 28 set) of memory
 * and peripherals (AN505 "Memory map", IoT Kit TRM "Secure and Non-secure
 * aliases"):
 *   UART0   0x50200000 (CMSDK APB UART, interrupt: IRQ 42, UART0 combined)
 *   TIMER0  0x50000000 (CMSDK APB timer of the IoT Kit, clocked by MAINCLK)
 * Clocks are fixed by the FPGA image: MAINCLK = PCLK = 20 MHz (AN505
 * "Clocks"); nothing to set up.
 *
 * Cost counter: TIMER0 counts down at 20 MHz. Under QEMU -icount shift=0
 * (1 ns of emulated time per instruction) one tick is 50 instructions.
 */
#include <stdint.h>

#include "board.h"
#include "cmsdk.h"
#include "cortexm.h"

#ifndef UART_BAUD
#define UART_BAUD 115200u
#endif

#define SYSCLK_HZ     20000000u
#define UART0_BASE    0x50200000u
#define UART0_RX_IRQN 42u
#define TIMER0_BASE   0x50000000u

const char board_name[] = "mps2-an505";
uint8_t tick_kind;
uint32_t tick_hz;
static uint32_t tick_origin;

void board_uart_irq(int on)
{
    nvic_irq_set(UART0_RX_IRQN, on);
}

void UART0RX_IRQHandler(void)
{
    cmsdk_uart_rx_isr(UART0_BASE);
}

void uart_write(const uint8_t *data, size_t n)
{
    cmsdk_uart_write(UART0_BASE, data, n);
}

void ticks_start(void)
{
    tick_origin = CMSDK_TIMER_VALUE(TIMER0_BASE);
}

uint32_t ticks_read(void)
{
    return tick_origin - CMSDK_TIMER_VALUE(TIMER0_BASE); /* counts down */
}

void board_init(void)
{
    cmsdk_uart_init(UART0_BASE, SYSCLK_HZ, UART_BAUD);
    uart_rx_irq_enable(1);
    cmsdk_timer_start(TIMER0_BASE);
    tick_kind = TICK_KIND_CMSDK_TIMER;
    tick_hz = SYSCLK_HZ;
}
