/*
 * Arm MPS2+ with the AN500 FPGA image (Cortex-M7). Peripherals from the
 * AN500 memory map (CMSDK APB subsystem, as on AN385):
 *   UART0   0x40004000 (CMSDK APB UART, RX interrupt = IRQ 0)
 *   TIMER0  0x40000000 (CMSDK APB timer)
 * Clocks are fixed by the FPGA image: SYSCLK = PCLK = 25 MHz (AN500
 * "Clocks"); nothing to set up.
 *
 * Cost counter: TIMER0 counts down at 25 MHz. Under QEMU -icount shift=0
 * (1 ns of emulated time per instruction) one tick is 40 instructions.
 */
#include <stdint.h>

#include "board.h"
#include "cmsdk.h"
#include "cortexm.h"

#define SYSCLK_HZ     25000000u
#define UART0_BASE    0x40004000u
#define UART0_RX_IRQN 0u
#define TIMER0_BASE   0x40000000u

const char board_name[] = "mps2-an500";
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
