/*
 * STM32F405 board support: clock tree, USART1 on PA9/PA10, TIM2 and DWT
 * cost counters, receive ring buffer. No vendor HAL: registers from RM0090
 * (section numbers in the comments), so a reviewer can check every value
 * against the reference manual in this one file.
 *
 * Settings (Makefile variables, passed as -D):
 *   HSE_HZ      crystal/oscillator on OSC_IN, e.g. 8000000 (Discovery),
 *               12000000, 25000000 (Netduino Plus 2). Multiple of 1 MHz,
 *               4..26 MHz (RM0090 5.3.2: HSE 4-26 MHz).
 *   HSE_BYPASS  1 if OSC_IN is driven by an external clock (e.g. ST-LINK MCO).
 *   UART_BAUD   USART1 baud rate, default 115200. USART1 runs from APB2 =
 *               84 MHz with oversampling by 16, so a rate is exact when
 *               84 MHz / rate is a whole number of at least 16: 1000000,
 *               2000000, 3000000, 5250000 (the fastest) are; 115200 is
 *               0.02 % fast. A rate more than 1 % off does not build.
 *
 * QEMU (netduinoplus2) does not model RCC, FLASH or GPIO (reads return 0),
 * so HSERDY never sets: the HSE start-up times out and the board stays on
 * the 16 MHz HSI. QEMU also ignores BRR. Neither changes any result: the
 * tick counts under QEMU come from -icount, not from these clocks.
 */
#include <stdint.h>

#include "board.h"

#ifndef HSE_HZ
#define HSE_HZ 8000000u
#endif
#ifndef HSE_BYPASS
#define HSE_BYPASS 0
#endif
#ifndef UART_BAUD
#define UART_BAUD 115200u
#endif
#define APB2_PLL_HZ 84000000u
#if UART_BAUD > APB2_PLL_HZ / 16u
#error "UART_BAUD is above 5250000, the fastest USART1 makes from 84 MHz"
#endif
#define UART_BRR_PLL ((APB2_PLL_HZ + UART_BAUD / 2u) / UART_BAUD)
#if APB2_PLL_HZ / UART_BRR_PLL > UART_BAUD + UART_BAUD / 100u ||                                             \
    APB2_PLL_HZ / UART_BRR_PLL < UART_BAUD - UART_BAUD / 100u
#error "UART_BAUD is more than 1 % off any rate USART1 makes from 84 MHz"
#endif

/* Register access and the few CPU instructions used, as macros so that
 * tests/test_board_registers.py can compile this file for the host with a
 * simulated register file and check every value written. */
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

/* --- RCC (RM0090 7.3) -------------------------------------------------- */
#define RCC_BASE            0x40023800u
#define RCC_CR              REG(RCC_BASE + 0x00)
#define RCC_PLLCFGR         REG(RCC_BASE + 0x04)
#define RCC_CFGR            REG(RCC_BASE + 0x08)
#define RCC_AHB1ENR         REG(RCC_BASE + 0x30)
#define RCC_APB1ENR         REG(RCC_BASE + 0x40)
#define RCC_APB2ENR         REG(RCC_BASE + 0x44)
#define RCC_CR_HSEON        (1u << 16)
#define RCC_CR_HSERDY       (1u << 17)
#define RCC_CR_HSEBYP       (1u << 18)
#define RCC_CR_PLLON        (1u << 24)
#define RCC_CR_PLLRDY       (1u << 25)
#define RCC_PLLCFGR_SRC_HSE (1u << 22)
/* M[5:0] N[14:6] P[17:16] SRC[22] Q[27:24]; the other bits are reserved and
 * keep their reset value (bit 29 resets to 1). */
#define RCC_PLLCFGR_FIELDS   0x0F437FFFu
#define RCC_CFGR_SW_MASK     (3u << 0)
#define RCC_CFGR_SW_PLL      (2u << 0)
#define RCC_CFGR_SWS_MASK    (3u << 2)
#define RCC_CFGR_SWS_PLL     (2u << 2)
#define RCC_CFGR_HPRE_DIV1   (0u << 4)
#define RCC_CFGR_PPRE1_DIV4  (5u << 10) /* APB1 <= 42 MHz */
#define RCC_CFGR_PPRE2_DIV2  (4u << 13) /* APB2 <= 84 MHz */
#define RCC_AHB1ENR_GPIOAEN  (1u << 0)
#define RCC_APB1ENR_TIM2EN   (1u << 0)
#define RCC_APB1ENR_PWREN    (1u << 28)
#define RCC_APB2ENR_USART1EN (1u << 4)

/* --- PWR (RM0090 5.4.1), FLASH (RM0090 3.9.1) ------------------------------ */
#define PWR_CR                 REG(0x40007000u)
#define PWR_CR_VOS             (1u << 14) /* scale 1: needed for 168 MHz */
#define FLASH_ACR              REG(0x40023C00u)
#define FLASH_ACR_LATENCY_MASK 7u
#define FLASH_ACR_PRFTEN       (1u << 8)
#define FLASH_ACR_ICEN         (1u << 9)
#define FLASH_ACR_DCEN         (1u << 10)
/* RM0090 Table 10, 2.7-3.6 V: 5 wait states for 150 < HCLK <= 168 MHz. */
#define FLASH_LATENCY_168MHZ 5u

/* --- GPIOA (RM0090 8.4) -------------------------------------------------- */
#define GPIOA_BASE    0x40020000u
#define GPIOA_MODER   REG(GPIOA_BASE + 0x00)
#define GPIOA_OSPEEDR REG(GPIOA_BASE + 0x08)
#define GPIOA_PUPDR   REG(GPIOA_BASE + 0x0C)
#define GPIOA_AFRH    REG(GPIOA_BASE + 0x24)

/* --- USART1 (RM0090 30.6) ------------------------------------------------ */
#define USART1_BASE      0x40011000u
#define USART1_SR        REG(USART1_BASE + 0x00)
#define USART1_DR        REG(USART1_BASE + 0x04)
#define USART1_BRR       REG(USART1_BASE + 0x08)
#define USART1_CR1       REG(USART1_BASE + 0x0C)
#define USART_SR_ORE     (1u << 3)
#define USART_SR_RXNE    (1u << 5)
#define USART_SR_TXE     (1u << 7)
#define USART_CR1_RE     (1u << 2)
#define USART_CR1_TE     (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE     (1u << 13)
#define USART1_IRQN      37u /* RM0090 Table 61 */

/* --- TIM2 (RM0090 18.4), 32-bit counter ---------------------------------- */
#define TIM2_BASE 0x40000000u
#define TIM2_CR1  REG(TIM2_BASE + 0x00)
#define TIM2_EGR  REG(TIM2_BASE + 0x14)
#define TIM2_CNT  REG(TIM2_BASE + 0x24)
#define TIM2_PSC  REG(TIM2_BASE + 0x28)
#define TIM2_ARR  REG(TIM2_BASE + 0x2C)

/* --- Cortex-M4 core (ARMv7-M ARM) ---------------------------------------- */
#define NVIC_ISER(n) REG(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) REG(0xE000E180u + 4u * (n))
#define SCB_AIRCR    REG(0xE000ED0Cu)
#define DEMCR        REG(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL     REG(0xE0001000u)
#define DWT_CYCCNT   REG(0xE0001004u)

/* --- clock tree ------------------------------------------------------------ */
/* PLL input 2 MHz when HSE allows it (RM0090 6.3.2 recommends 2 MHz to limit
 * jitter), else 1 MHz. VCO = 336 MHz (100..432), SYSCLK = VCO/2 = 168 MHz,
 * 48 MHz domain = VCO/7 = 48 MHz (USB/SDIO need exactly 48). */
#define HSI_HZ 16000000u
#if HSE_HZ % 2000000u == 0
#define PLL_M (HSE_HZ / 2000000u)
#define PLL_N 168u
#elif HSE_HZ % 1000000u == 0
#define PLL_M (HSE_HZ / 1000000u)
#define PLL_N 336u
#else
#error "HSE_HZ must be a multiple of 1 MHz"
#endif
#define PLL_P 2u
#define PLL_Q 7u
#if HSE_HZ < 4000000u || HSE_HZ > 26000000u || PLL_M < 2u || PLL_M > 63u
#error "HSE_HZ out of range (4-26 MHz)"
#endif
#if HSE_HZ / PLL_M * PLL_N / PLL_P != 168000000u
#error "PLL settings do not give 168 MHz"
#endif
#define SYSCLK_PLL_HZ 168000000u

/* Bounded waits: a board without a working crystal (or QEMU) falls back to
 * HSI instead of hanging. ~0x20000 polls is > 10 ms at 16 MHz, well above
 * a crystal's typical 2 ms start-up. */
#define CLOCK_WAIT_POLLS 0x20000u

static uint32_t sysclk_hz = HSI_HZ;
static uint32_t apb1_hz = HSI_HZ, apb2_hz = HSI_HZ;

static int wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t i = 0; i < CLOCK_WAIT_POLLS; i++)
        if ((*reg & mask) == value)
            return 1;
    return 0;
}

static void clock_init(void)
{
    /* Running on HSI (16 MHz) since reset. */
    if (HSE_BYPASS)
        RCC_CR |= RCC_CR_HSEBYP; /* only writable while HSE is off (RM0090 7.3.1) */
    RCC_CR |= RCC_CR_HSEON;
    if (!wait_set(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY)) {
        RCC_CR &= ~RCC_CR_HSEON;
        RCC_CR &= ~RCC_CR_HSEBYP;
        return; /* stay on HSI 16 MHz, all buses undivided */
    }

    /* VOS and PLL settings may only change while the PLL is off (RM0090
     * 5.4.1, 7.3.2); after reset it is off and SYSCLK is HSI. */
    RCC_CR &= ~RCC_CR_PLLON;
    wait_set(&RCC_CR, RCC_CR_PLLRDY, 0);
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* RM0090 7.3: delay after enabling a peripheral clock */
    PWR_CR |= PWR_CR_VOS;

    RCC_PLLCFGR = (RCC_PLLCFGR & ~RCC_PLLCFGR_FIELDS) | PLL_M | (PLL_N << 6) | (((PLL_P / 2u) - 1u) << 16) |
                  RCC_PLLCFGR_SRC_HSE | (PLL_Q << 24);
    RCC_CR |= RCC_CR_PLLON;
    if (!wait_set(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY))
        return;

    /* Wait states before the clock goes up (RM0090 3.5.1). */
    FLASH_ACR = FLASH_LATENCY_168MHZ | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    if ((FLASH_ACR & FLASH_ACR_LATENCY_MASK) != FLASH_LATENCY_168MHZ)
        return;

    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13))) | RCC_CFGR_HPRE_DIV1 |
               RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    if (!wait_set(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL)) {
        RCC_CFGR &= ~(RCC_CFGR_SW_MASK | (7u << 10) | (7u << 13)); /* HSI, buses undivided */
        return;
    }
    sysclk_hz = SYSCLK_PLL_HZ;
    apb1_hz = SYSCLK_PLL_HZ / 4u; /* 42 MHz */
    apb2_hz = SYSCLK_PLL_HZ / 2u; /* 84 MHz */
}

/* APB1 timers run at 2 x PCLK1 when the APB1 prescaler is not 1 (RM0090 7.2). */
static uint32_t tim2_clock_hz(void)
{
    return apb1_hz == sysclk_hz ? apb1_hz : 2u * apb1_hz;
}

/* Oversampling by 16 (RM0090 30.3.4): USARTDIV = fck / (16 baud); BRR holds
 * USARTDIV in 12.4 fixed point, i.e. BRR = fck / baud, rounded. 84 MHz /
 * 115200 -> 729 (0x2D9: 45 + 9/16) -> 115226 baud, +0.02 %. */
static uint32_t usart_brr(uint32_t fck, uint32_t baud)
{
    return (fck + baud / 2u) / baud;
}

/* --- UART ------------------------------------------------------------------ */
/* Receive ring filled by the interrupt handler, drained by the main loop.
 * When it is full the handler leaves the byte in DR and disables its own
 * interrupt ("throttled") until the main loop has drained half of it: under
 * QEMU the emulated USART then holds further bytes back, so nothing is lost
 * however fast the host sends (QEMU can deliver bytes as fast as the handler
 * reads them, so an unthrottled handler could fill the ring without the main
 * loop ever running). On silicon a byte arriving while throttled is an
 * overrun, counted in rx_dropped; at 115200 baud the main loop drains far
 * faster than bytes arrive, so only a masked window (inference) can cause one. */
#define RX_RING_BYTES 256u /* power of two */
static volatile uint8_t rx_ring[RX_RING_BYTES];
static volatile uint32_t rx_head, rx_tail; /* head: ISR writes, tail: main reads */
static volatile uint32_t rx_dropped;
static volatile uint8_t rx_throttled; /* ISR disabled itself: ring full */
static volatile uint8_t rx_enabled;   /* what the application asked for */

static void usart1_irq_set(int on)
{
    if (on) {
        NVIC_ISER(USART1_IRQN / 32u) = 1u << (USART1_IRQN % 32u);
    } else {
        NVIC_ICER(USART1_IRQN / 32u) = 1u << (USART1_IRQN % 32u);
        CPU_DSB_ISB();
    }
}

static void uart_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR;

    /* PA9 = USART1_TX, PA10 = USART1_RX: alternate function 7 (datasheet
     * Table 9), TX high speed, RX pull-up so an open line reads idle. */
    GPIOA_MODER = (GPIOA_MODER & ~((3u << 18) | (3u << 20))) | (2u << 18) | (2u << 20);
    GPIOA_OSPEEDR |= 2u << 18;
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(3u << 20)) | (1u << 20);
    GPIOA_AFRH = (GPIOA_AFRH & ~((0xFu << 4) | (0xFu << 8))) | (7u << 4) | (7u << 8);

    USART1_BRR = usart_brr(apb2_hz, UART_BAUD);
    USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    uart_rx_irq_enable(1);
}

void USART1_IRQHandler(void)
{
    uint32_t sr;
    /* Reading SR then DR clears RXNE and ORE (RM0090 30.6.1). */
    while ((sr = USART1_SR) & (USART_SR_RXNE | USART_SR_ORE)) {
        uint32_t head = rx_head;
        if ((sr & USART_SR_RXNE) && head - rx_tail >= RX_RING_BYTES) {
            rx_throttled = 1; /* leave the byte in DR; main loop re-enables */
            usart1_irq_set(0);
            return;
        }
        uint8_t b = (uint8_t)USART1_DR;
        if (sr & USART_SR_ORE)
            rx_dropped++; /* the frame it belonged to fails its CRC */
        if (sr & USART_SR_RXNE) {
            rx_ring[head % RX_RING_BYTES] = b;
            rx_head = head + 1u;
        }
    }
}

void uart_rx_irq_enable(int enable)
{
    rx_enabled = (uint8_t)(enable != 0);
    usart1_irq_set(enable && !rx_throttled);
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
            usart1_irq_set(1);
    }
    return 1;
}

void uart_write(const uint8_t *data, size_t n)
{
    while (n--) {
        while (!(USART1_SR & USART_SR_TXE))
            ;
        USART1_DR = *data++;
    }
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

/* --- cost counter ---------------------------------------------------------- */
uint8_t tick_kind;
uint32_t tick_hz;
static uint32_t tick_origin;

static uint32_t tick_now(void)
{
    return tick_kind == TICK_KIND_DWT ? DWT_CYCCNT : TIM2_CNT;
}

/* DWT CYCCNT counts CPU cycles on silicon; QEMU reads it as 0, so if it does
 * not move, fall back to TIM2 (one tick per instruction under -icount). */
static void ticks_init(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u; /* CYCCNTENA */
    for (volatile int i = 0; i < 16; i++)
        ;
    if (DWT_CYCCNT != 0) {
        tick_kind = TICK_KIND_DWT;
        tick_hz = sysclk_hz;
        return;
    }
    RCC_APB1ENR |= RCC_APB1ENR_TIM2EN;
    (void)RCC_APB1ENR;
    TIM2_CR1 = 0;
    TIM2_PSC = 0;
    TIM2_ARR = 0xFFFFFFFFu;
    TIM2_EGR = 1u; /* UG: load PSC */
    TIM2_CR1 = 1u; /* CEN, up-counting */
    tick_kind = TICK_KIND_TIM2;
    tick_hz = tim2_clock_hz();
}

void ticks_start(void)
{
    tick_origin = tick_now();
}

uint32_t ticks_read(void)
{
    return tick_now() - tick_origin;
}

/* --- RAM figures from the linker script -------------------------------------- */
extern uint32_t _sdata, _ebss, _sstack, _estack;
#define STACK_PAINT 0xA5A5A5A5u

/* Static RAM: from the lowest to the highest address of .stack, .data and
 * .bss, alignment gaps included; the host's size report uses the same rule. */
uint32_t board_ram_static_bytes(void)
{
    uintptr_t lo = (uintptr_t)&_sstack < (uintptr_t)&_sdata ? (uintptr_t)&_sstack : (uintptr_t)&_sdata;
    uintptr_t hi = (uintptr_t)&_estack > (uintptr_t)&_ebss ? (uintptr_t)&_estack : (uintptr_t)&_ebss;
    return (uint32_t)(hi - lo);
}

uint32_t board_stack_size(void)
{
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)&_sstack);
}

/* The reset handler painted the stack; the first changed word from the
 * bottom marks the deepest the stack has ever been. */
uint32_t board_stack_peak(void)
{
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == STACK_PAINT)
        p++;
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

const char board_name[] = "stm32f405";

void board_init(void)
{
    clock_init();
    uart_init();
    ticks_init();
}

/* Any fault: reset, so the host sees a boot HELLO instead of silence. */
void board_fault_reset(void)
{
    CPU_DSB();
    SCB_AIRCR = (0x5FAu << 16) | (1u << 2); /* VECTKEY | SYSRESETREQ */
    CPU_DSB();
    for (;;)
        ;
}
