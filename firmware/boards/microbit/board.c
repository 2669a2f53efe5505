/*
 * BBC micro:bit v1 (nRF51822, Cortex-M0, 256 KiB flash, 16 KiB RAM):
 * 16 MHz crystal, UART0 on P0.24 (TX) / P0.25 (RX) (the interface chip's
 * USB serial port), TIMER0 as the cost counter. Registers from the nRF51
 * Series Reference Manual v3.0 (section numbers in the comments).
 *
 * QEMU (microbit) answers every CLOCK register read with 1, so the crystal
 * "starts" at once; it models UART0, TIMER0-2 and GPIO. The nRF51 has no
 * SysTick: TIMER0 (32-bit, 16 MHz) counts. Under QEMU -icount shift=0
 * (1 ns of emulated time per instruction) one tick is 62.5 instructions.
 */
#include <stdint.h>

#include "board.h"
#include "cortexm.h"

/* --- CLOCK (RM 13.1) ------------------------------------------------------ */
#define CLOCK_BASE                0x40000000u
#define CLOCK_TASKS_HFCLKSTART    REG(CLOCK_BASE + 0x000)
#define CLOCK_EVENTS_HFCLKSTARTED REG(CLOCK_BASE + 0x100)
#define CLOCK_XTALFREQ            REG(CLOCK_BASE + 0x550)
#define CLOCK_XTALFREQ_16MHZ      0xFFu

/* --- GPIO (RM 14.2) ------------------------------------------------------- */
#define GPIO_BASE                 0x50000000u
#define GPIO_OUTSET               REG(GPIO_BASE + 0x508)
#define GPIO_PIN_CNF(n)           REG(GPIO_BASE + 0x700 + 4u * (n))
#define GPIO_PIN_CNF_OUTPUT       1u        /* DIR = output, input buffer connected */
#define GPIO_PIN_CNF_INPUT_PULLUP (3u << 2) /* DIR = input, PULL = up */
#define UART_TX_PIN               24u
#define UART_RX_PIN               25u

/* --- UART0 (RM 29.10) ----------------------------------------------------- */
#define UART0_BASE          0x40002000u
#define UART0_TASKS_STARTRX REG(UART0_BASE + 0x000)
#define UART0_TASKS_STARTTX REG(UART0_BASE + 0x008)
#define UART0_EVENTS_RXDRDY REG(UART0_BASE + 0x108)
#define UART0_EVENTS_TXDRDY REG(UART0_BASE + 0x11C)
#define UART0_EVENTS_ERROR  REG(UART0_BASE + 0x124)
#define UART0_INTENSET      REG(UART0_BASE + 0x304)
#define UART0_ERRORSRC      REG(UART0_BASE + 0x480)
#define UART0_ENABLE        REG(UART0_BASE + 0x500)
#define UART0_PSELTXD       REG(UART0_BASE + 0x50C)
#define UART0_PSELRXD       REG(UART0_BASE + 0x514)
#define UART0_RXD           REG(UART0_BASE + 0x518)
#define UART0_TXD           REG(UART0_BASE + 0x51C)
#define UART0_BAUDRATE      REG(UART0_BASE + 0x524)
#define UART0_CONFIG        REG(UART0_BASE + 0x56C)
#define UART_ENABLE_ENABLED 4u
#define UART_INTEN_RXDRDY   (1u << 2)
#define UART_INTEN_ERROR    (1u << 9)
#define UART0_IRQN          2u /* RM Table 23: ID 2 */

/* --- TIMER0 (RM 18.10) ------------------------------------------------------ */
#define TIMER0_BASE           0x40008000u
#define TIMER0_TASKS_START    REG(TIMER0_BASE + 0x000)
#define TIMER0_TASKS_STOP     REG(TIMER0_BASE + 0x004)
#define TIMER0_TASKS_CLEAR    REG(TIMER0_BASE + 0x00C)
#define TIMER0_TASKS_CAPTURE0 REG(TIMER0_BASE + 0x040)
#define TIMER0_MODE           REG(TIMER0_BASE + 0x504)
#define TIMER0_BITMODE        REG(TIMER0_BASE + 0x508)
#define TIMER0_PRESCALER      REG(TIMER0_BASE + 0x510)
#define TIMER0_CC0            REG(TIMER0_BASE + 0x540)
#define TIMER_MODE_TIMER      0u
#define TIMER_BITMODE_32      3u
#define TIMER_HZ              16000000u /* HFCLK / 2^PRESCALER, PRESCALER = 0 */

/* BAUDRATE register values are not f/baud: RM Table 285 lists them. */
#define UART_BAUDRATE_115200 0x01D7E000u
#define UART_BAUDRATE_9600   0x00275000u
#ifndef UART_BAUD
#define UART_BAUD 115200u
#endif
#if UART_BAUD == 115200u
#define UART_BAUDRATE_VALUE UART_BAUDRATE_115200
#elif UART_BAUD == 9600u
#define UART_BAUDRATE_VALUE UART_BAUDRATE_9600
#else
#error "UART_BAUD: add its BAUDRATE value from the nRF51 RM (Table 285)"
#endif

#define CLOCK_WAIT_POLLS 0x20000u /* > 10 ms; the crystal needs < 1 ms */

static void clock_init(void)
{
    /* The micro:bit has a 16 MHz crystal; HFCLK runs from the internal RC
     * oscillator until it is started (RM 13.1.1). */
    CLOCK_XTALFREQ = CLOCK_XTALFREQ_16MHZ;
    CLOCK_EVENTS_HFCLKSTARTED = 0;
    CLOCK_TASKS_HFCLKSTART = 1;
    for (uint32_t i = 0; i < CLOCK_WAIT_POLLS && !CLOCK_EVENTS_HFCLKSTARTED; i++)
        ;
}

/* --- UART ---------------------------------------------------------------------- */
void board_uart_irq(int on)
{
    nvic_irq_set(UART0_IRQN, on);
}

void UART0_IRQHandler(void)
{
    if (UART0_EVENTS_ERROR) {
        UART0_EVENTS_ERROR = 0;
        uint32_t src = UART0_ERRORSRC;
        UART0_ERRORSRC = src; /* write 1 to clear */
        rx_ring_overrun();
    }
    /* RXD is a 6-byte FIFO: RXDRDY fires again while bytes are left in it. */
    while (UART0_EVENTS_RXDRDY) {
        if (rx_ring_full()) {
            rx_ring_throttle(); /* the byte waits in the FIFO */
            return;
        }
        UART0_EVENTS_RXDRDY = 0; /* clear before reading RXD (RM 29.4) */
        rx_ring_put((uint8_t)UART0_RXD);
    }
}

static void uart_init(void)
{
    GPIO_OUTSET = 1u << UART_TX_PIN; /* idle high before the UART takes the pin */
    GPIO_PIN_CNF(UART_TX_PIN) = GPIO_PIN_CNF_OUTPUT;
    GPIO_PIN_CNF(UART_RX_PIN) = GPIO_PIN_CNF_INPUT_PULLUP;
    UART0_PSELTXD = UART_TX_PIN;
    UART0_PSELRXD = UART_RX_PIN;
    UART0_BAUDRATE = UART_BAUDRATE_VALUE;
    UART0_CONFIG = 0; /* no parity, no flow control */
    UART0_ENABLE = UART_ENABLE_ENABLED;
    UART0_INTENSET = UART_INTEN_RXDRDY | UART_INTEN_ERROR;
    UART0_TASKS_STARTTX = 1;
    UART0_TASKS_STARTRX = 1;
    uart_rx_irq_enable(1);
}

void uart_write(const uint8_t *data, size_t n)
{
    while (n--) {
        UART0_EVENTS_TXDRDY = 0;
        UART0_TXD = *data++;
        while (!UART0_EVENTS_TXDRDY)
            ;
    }
}

/* --- cost counter -------------------------------------------------------------- */
const char board_name[] = "microbit";
uint8_t tick_kind;
uint32_t tick_hz;
static uint32_t tick_origin;

static uint32_t timer0_now(void)
{
    TIMER0_TASKS_CAPTURE0 = 1;
    return TIMER0_CC0;
}

void ticks_start(void)
{
    tick_origin = timer0_now();
}

uint32_t ticks_read(void)
{
    return timer0_now() - tick_origin;
}

static void ticks_init(void)
{
    TIMER0_TASKS_STOP = 1;
    TIMER0_MODE = TIMER_MODE_TIMER;
    TIMER0_BITMODE = TIMER_BITMODE_32;
    TIMER0_PRESCALER = 0;
    TIMER0_TASKS_CLEAR = 1;
    TIMER0_TASKS_START = 1;
    tick_kind = TICK_KIND_NRF_TIMER;
    tick_hz = TIMER_HZ;
}

void board_init(void)
{
    clock_init();
    uart_init();
    ticks_init();
}
