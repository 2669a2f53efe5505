/*
 * Shared Cortex-M support: C start-up, RAM figures from the linker script,
 * fault reset, NVIC and SysTick helpers, and the receive ring behind
 * uart_read_byte() / uart_rx_irq_enable() / board_wait_for_interrupt().
 */
#include <stdint.h>

#include "board.h"
#include "cortexm.h"

/* --- start-up ----------------------------------------------------------- */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);
int main(void);

#define STACK_PAINT 0xA5A5A5A5u

#ifndef BOARD_REGISTER_TEST
void cortexm_start(void)
{
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
}
#endif

/* Any fault or unexpected interrupt: reset, so the host sees a boot HELLO
 * instead of silence. */
void board_fault_reset(void)
{
    CPU_DSB();
    SCB_AIRCR = (0x5FAu << 16) | (1u << 2); /* VECTKEY | SYSRESETREQ */
    CPU_DSB();
    for (;;)
        ;
}

void Default_Handler(void)
{
    board_fault_reset();
}

/* --- RAM figures ---------------------------------------------------------- */
uint32_t board_stack_size(void)
{
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)&_sstack);
}

uint32_t board_ram_static_bytes(void)
{
    return (uint32_t)((uintptr_t)&_ebss - (uintptr_t)&_sdata) + board_stack_size();
}

/* The first changed word from the bottom of the painted stack marks the
 * deepest the stack has ever been. */
uint32_t board_stack_peak(void)
{
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == STACK_PAINT)
        p++;
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

/* --- NVIC, SysTick ------------------------------------------------------------ */
void nvic_irq_set(uint32_t irqn, int on)
{
    if (on) {
        NVIC_ISER(irqn / 32u) = 1u << (irqn % 32u);
    } else {
        NVIC_ICER(irqn / 32u) = 1u << (irqn % 32u);
        CPU_DSB_ISB();
    }
}

void systick_start(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYST_MASK;
    SYST_CVR = 0; /* any write clears it; reloads from RVR on the next tick */
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_CLKSOURCE_CPU;
}

/* --- receive ring ---------------------------------------------------------- */
/* When the ring is full the handler leaves the byte in the UART and the
 * UART interrupt stays masked ("throttled") until the main loop has drained
 * half of it: under QEMU the emulated UART then holds further bytes back,
 * so nothing is lost however fast the host sends. On silicon a byte arriving
 * while throttled is an overrun, counted in rx_dropped. */
#define RX_RING_BYTES 256u /* power of two */
static volatile uint8_t rx_ring[RX_RING_BYTES];
static volatile uint32_t rx_head, rx_tail; /* head: ISR writes, tail: main reads */
static volatile uint32_t rx_dropped;
static volatile uint8_t rx_throttled; /* ISR disabled itself: ring full */
static volatile uint8_t rx_enabled;   /* what the application asked for */

int rx_ring_full(void)
{
    return rx_head - rx_tail >= RX_RING_BYTES;
}

void rx_ring_put(uint8_t b)
{
    uint32_t head = rx_head;
    rx_ring[head % RX_RING_BYTES] = b;
    rx_head = head + 1u;
}

void rx_ring_throttle(void)
{
    rx_throttled = 1;
    board_uart_irq(0);
}

void rx_ring_overrun(void)
{
    rx_dropped++;
}

void uart_rx_irq_enable(int enable)
{
    rx_enabled = (uint8_t)(enable != 0);
    board_uart_irq(enable && !rx_throttled);
}

int uart_read_byte(uint8_t *b)
{
    uint32_t tail = rx_tail;
    if (tail == rx_head)
        return 0;
    *b = rx_ring[tail % RX_RING_BYTES];
    rx_tail = ++tail;
    /* The ISR is off while throttled, so this cannot race with it. */
    if (rx_throttled && rx_head - tail <= RX_RING_BYTES / 2u) {
        rx_throttled = 0;
        if (rx_enabled)
            board_uart_irq(1);
    }
    return 1;
}

void board_wait_for_interrupt(void)
{
    CPU_IRQ_OFF();
    if (rx_tail == rx_head)
        CPU_WFI();
    CPU_IRQ_ON();
}

uint32_t board_rx_dropped(void)
{
    return rx_dropped;
}
