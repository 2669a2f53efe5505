/*
 * Arm CMSDK APB UART and APB timer (Cortex-M System Design Kit TRM, DDI0479,
 * chapters "APB UART" and "APB timer"), as found on the MPS2/MPS3 FPGA
 * images. One driver, any base address: a board passes its own.
 */
#ifndef CMSDK_H
#define CMSDK_H

#include <stddef.h>
#include <stdint.h>

#include "cortexm.h"

/* APB UART */
#define CMSDK_UART_DATA(base)     REG((base) + 0x00u)
#define CMSDK_UART_STATE(base)    REG((base) + 0x04u)
#define CMSDK_UART_CTRL(base)     REG((base) + 0x08u)
#define CMSDK_UART_INTCLEAR(base) REG((base) + 0x0Cu) /* INTSTATUS on read */
#define CMSDK_UART_BAUDDIV(base)  REG((base) + 0x10u)
#define CMSDK_UART_STATE_TXFULL   (1u << 0)
#define CMSDK_UART_STATE_RXFULL   (1u << 1)
#define CMSDK_UART_STATE_RXOVR    (1u << 3)
#define CMSDK_UART_CTRL_TXEN      (1u << 0)
#define CMSDK_UART_CTRL_RXEN      (1u << 1)
#define CMSDK_UART_CTRL_RXINTEN   (1u << 3)
#define CMSDK_UART_INT_RX         (1u << 1)
#define CMSDK_UART_INT_RXOVR      (1u << 3)
#define CMSDK_UART_BAUDDIV_MIN    16u

/* APB timer: 32-bit down-counter, reloads from RELOAD at zero. */
#define CMSDK_TIMER_CTRL(base)   REG((base) + 0x00u)
#define CMSDK_TIMER_VALUE(base)  REG((base) + 0x04u)
#define CMSDK_TIMER_RELOAD(base) REG((base) + 0x08u)
#define CMSDK_TIMER_CTRL_EN      (1u << 0)

/* BAUDDIV = PCLK / baud, rounded (TRM: minimum 16). */
uint32_t cmsdk_uart_bauddiv(uint32_t pclk_hz, uint32_t baud);
/* 8N1, transmit and receive on, receive interrupt on. */
void cmsdk_uart_init(uint32_t base, uint32_t pclk_hz, uint32_t baud);
void cmsdk_uart_write(uint32_t base, const uint8_t *data, size_t n);
/* Interrupt handler body: bytes into the receive ring (cortexm.h). */
void cmsdk_uart_rx_isr(uint32_t base);
/* Free-running from 0xFFFFFFFF: ticks elapsed = earlier - later. */
void cmsdk_timer_start(uint32_t base);

#endif /* CMSDK_H */
