/*
 * Arm MPS3 with the AN547 FPGA image (Cortex-M55 with Helium, SSE-300).
 *
 * The core starts in the Secure state with the SAU off, so every address
 * is Secure: the firmware uses the Secure aliases (bit 28 set) of the
 * peripherals (AN547 "Memory map"):
 *   UART0   0x59303000 (CMSDK APB UART, interrupt: IRQ 43, UART0 combined)
 * Clocks are fixed by the FPGA image: CPU 32 MHz, APB peripherals 25 MHz
 * (AN547 "Clocks"); nothing to set up.
 *
 * Cost counter: SysTick from the CPU clock (32 MHz). Under QEMU -icount
 * shift=0 (1 ns of emulated time per instruction) one tick is 31.25
 * instructions. It has 24 bits: one measurement may span up to 2^24 ticks.
 */
#include <stdint.h>

#include "board.h"
#include "cmsdk.h"
#include "cortexm.h"

#define CPU_HZ     32000000u
#define PCLK_HZ    25000000u
#define UART0_BASE 0x59303000u
#define UART0_IRQN 43u

const char board_name[] = "mps3-an547";
uint8_t tick_kind;
uint32_t tick_hz;
static uint32_t tick_origin;

void board_uart_irq(int on)
{
    nvic_irq_set(UART0_IRQN, on);
}

void UART0_IRQHandler(void)
{
    cmsdk_uart_rx_isr(UART0_BASE);
}

void uart_write(const uint8_t *data, size_t n)
{
    cmsdk_uart_write(UART0_BASE, data, n);
}

void ticks_start(void)
{
    tick_origin = SYST_CVR;
}

uint32_t ticks_read(void)
{
    return (tick_origin - SYST_CVR) & SYST_MASK; /* counts down */
}

void board_init(void)
{
    cmsdk_uart_init(UART0_BASE, PCLK_HZ, UART_BAUD);
    uart_rx_irq_enable(1);
    systick_start();
    tick_kind = TICK_KIND_SYSTICK;
    tick_hz = CPU_HZ;
}
