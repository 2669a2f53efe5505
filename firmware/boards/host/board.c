/*
 * Host "board" for tests: the serial link is stdin/stdout, ticks are
 * nanoseconds of CLOCK_MONOTONIC. Runs app/main.c unchanged on a PC, so the
 * garbage tests exercise the same parser and dispatch as the firmware.
 * At end of input it flushes and exits 0.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "board.h"

uint8_t tick_kind = TICK_KIND_HOST_NS;
uint32_t tick_hz = 1000000000u;
const char board_name[] = "host";
static uint32_t tick_origin;
static int at_eof;

static uint32_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

void board_init(void)
{
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
}

void uart_write(const uint8_t *data, size_t n)
{
    fwrite(data, 1, n, stdout);
}

int uart_read_byte(uint8_t *b)
{
    int c = getchar();
    if (c == EOF) {
        at_eof = 1;
        return 0;
    }
    *b = (uint8_t)c;
    return 1;
}

void uart_rx_irq_enable(int enable)
{
    (void)enable;
}

void board_wait_for_interrupt(void)
{
    if (at_eof) {
        fflush(stdout);
        exit(0);
    }
}

void ticks_start(void)
{
    tick_origin = now_ns();
}

uint32_t ticks_read(void)
{
    return now_ns() - tick_origin;
}

uint32_t board_ram_static_bytes(void)
{
    return 0;
}
uint32_t board_stack_size(void)
{
    return 0;
}
uint32_t board_stack_peak(void)
{
    return 0;
}
uint32_t board_rx_dropped(void)
{
    return 0;
}
