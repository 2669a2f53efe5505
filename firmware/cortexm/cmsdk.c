/* CMSDK APB UART and timer drivers (see cmsdk.h). */
#include "cmsdk.h"

uint32_t cmsdk_uart_bauddiv(uint32_t pclk_hz, uint32_t baud)
{
    uint32_t div = (pclk_hz + baud / 2u) / baud;
    return div < CMSDK_UART_BAUDDIV_MIN ? CMSDK_UART_BAUDDIV_MIN : div;
}

void cmsdk_uart_init(uint32_t base, uint32_t pclk_hz, uint32_t baud)
{
    CMSDK_UART_CTRL(base) = 0;
    CMSDK_UART_BAUDDIV(base) = cmsdk_uart_bauddiv(pclk_hz, baud);
    CMSDK_UART_INTCLEAR(base) = CMSDK_UART_INT_RX | CMSDK_UART_INT_RXOVR;
    CMSDK_UART_CTRL(base) = CMSDK_UART_CTRL_TXEN | CMSDK_UART_CTRL_RXEN | CMSDK_UART_CTRL_RXINTEN;
}

void cmsdk_uart_write(uint32_t base, const uint8_t *data, size_t n)
{
    while (n--) {
        while (CMSDK_UART_STATE(base) & CMSDK_UART_STATE_TXFULL)
            ;
        CMSDK_UART_DATA(base) = *data++;
    }
}

/* The RX interrupt status is not the RXFULL flag: it stays set until
 * cleared. Clear it just before each read (the next byte can only arrive
 * after the read and raises it again); when the ring is full leave both
 * set, so the interrupt fires again once the main loop unmasks it. */
void cmsdk_uart_rx_isr(uint32_t base)
{
    for (;;) {
        uint32_t state = CMSDK_UART_STATE(base);
        if (state & CMSDK_UART_STATE_RXOVR) {
            CMSDK_UART_STATE(base) = CMSDK_UART_STATE_RXOVR; /* write 1 to clear */
            rx_ring_overrun();
        }
        if (!(state & CMSDK_UART_STATE_RXFULL)) {
            CMSDK_UART_INTCLEAR(base) = CMSDK_UART_INT_RX;
            if (!(CMSDK_UART_STATE(base) & CMSDK_UART_STATE_RXFULL))
                return;
            continue;
        }
        if (rx_ring_full()) {
            rx_ring_throttle(); /* the byte waits in DATA */
            return;
        }
        CMSDK_UART_INTCLEAR(base) = CMSDK_UART_INT_RX;
        rx_ring_put((uint8_t)CMSDK_UART_DATA(base));
    }
}

void cmsdk_timer_start(uint32_t base)
{
    CMSDK_TIMER_CTRL(base) = 0;
    CMSDK_TIMER_RELOAD(base) = 0xFFFFFFFFu;
    CMSDK_TIMER_VALUE(base) = 0xFFFFFFFFu;
    CMSDK_TIMER_CTRL(base) = CMSDK_TIMER_CTRL_EN;
}
