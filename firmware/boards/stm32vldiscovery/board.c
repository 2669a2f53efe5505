/*
 * STM32VLDISCOVERY (STM32F100RB, Cortex-M3, 128 KiB flash, 8 KiB SRAM):
 * clock tree, USART1 on PA9/PA10, SysTick cost counter. No vendor HAL:
 * registers from RM0041 (section numbers in the comments).
 *
 * Settings (Makefile variables, passed as -D):
 *   HSE_HZ     crystal on OSC_IN: 8000000 on the Discovery board. A multiple
 *              of 4 MHz from 4 to 24 MHz (RM0041 7.2.1: HSE 4-24 MHz).
 *   UART_BAUD  USART1 baud rate, default 115200.
 *
 * QEMU (stm32vldiscovery) models neither RCC nor GPIO nor the timers
 * (reads return 0): HSERDY never sets, the HSE start-up times out and the
 * firmware stays on the 8 MHz HSI; QEMU also ignores BRR and runs the core
 * clock (and so SysTick) at a fixed 24 MHz. The cost counter is SysTick
 * because QEMU models no TIMx on this chip; under -icount shift=0 (1 ns of
 * emulated time per instruction) one tick is 1e9 / 24e6 = 41.67
 * instructions.
 */
#include <stdint.h>

#include "board.h"
#include "cortexm.h"

#ifndef HSE_HZ
#define HSE_HZ 8000000u
#endif

/* --- RCC (RM0041 7.3) ---------------------------------------------------- */
#define RCC_BASE                0x40021000u
#define RCC_CR                  REG(RCC_BASE + 0x00)
#define RCC_CFGR                REG(RCC_BASE + 0x04)
#define RCC_APB2ENR             REG(RCC_BASE + 0x18)
#define RCC_CFGR2               REG(RCC_BASE + 0x2C)
#define RCC_CR_HSEON            (1u << 16)
#define RCC_CR_HSERDY           (1u << 17)
#define RCC_CR_PLLON            (1u << 24)
#define RCC_CR_PLLRDY           (1u << 25)
#define RCC_CFGR_SW_MASK        (3u << 0)
#define RCC_CFGR_SW_PLL         (2u << 0)
#define RCC_CFGR_SWS_MASK       (3u << 2)
#define RCC_CFGR_SWS_PLL        (2u << 2)
#define RCC_CFGR_PLLSRC_PREDIV1 (1u << 16)
#define RCC_CFGR_PLLMUL_SHIFT   18 /* PLLMUL[3:0]: 0 = x2 ... 7 = x9 */
#define RCC_CFGR_PLLMUL_MASK    (0xFu << 18)
#define RCC_APB2ENR_IOPAEN      (1u << 2)
#define RCC_APB2ENR_USART1EN    (1u << 14)

/* --- GPIOA (RM0041 8.2) --------------------------------------------------- */
#define GPIOA_BASE 0x40010800u
#define GPIOA_CRH  REG(GPIOA_BASE + 0x04)
#define GPIOA_ODR  REG(GPIOA_BASE + 0x0C)

/* --- USART1 (RM0041 23.6) -------------------------------------------------- */
#define USART1_BASE      0x40013800u
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
#define USART1_IRQN      37u /* RM0041 Table 53 */

/* --- clock tree --------------------------------------------------------------- */
/* SYSCLK = HSE / PREDIV1 x PLLMUL = 24 MHz, the part's maximum (datasheet
 * "STM32F100xB": 24 MHz); AHB, APB1, APB2 undivided. PLL input 4 MHz when
 * the crystal allows (PREDIV1 = HSE / 4 MHz), PLLMUL = 6 -> 24 MHz. */
#define HSI_HZ        8000000u
#define SYSCLK_PLL_HZ 24000000u
#if HSE_HZ % 4000000u != 0 || HSE_HZ < 4000000u || HSE_HZ > 24000000u
#error "HSE_HZ must be a multiple of 4 MHz from 4 to 24 MHz"
#endif
#define PREDIV1 (HSE_HZ / 4000000u)
#define PLLMUL  6u
#if HSE_HZ / PREDIV1 * PLLMUL != SYSCLK_PLL_HZ
#error "PLL settings do not give 24 MHz"
#endif

/* Bounded waits: without a working crystal (or under QEMU) the board stays
 * on HSI instead of hanging; > 10 ms at 8 MHz, a crystal needs ~2 ms. */
#define CLOCK_WAIT_POLLS 0x20000u

static uint32_t sysclk_hz = HSI_HZ;

static int wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t i = 0; i < CLOCK_WAIT_POLLS; i++)
        if ((*reg & mask) == value)
            return 1;
    return 0;
}

static void clock_init(void)
{
    RCC_CR |= RCC_CR_HSEON;
    if (!wait_set(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY)) {
        RCC_CR &= ~RCC_CR_HSEON;
        return; /* stay on HSI 8 MHz */
    }
    RCC_CFGR2 = (RCC_CFGR2 & ~0xFu) | (PREDIV1 - 1u); /* RM0041 7.3.12 */
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_PLLMUL_MASK) | RCC_CFGR_PLLSRC_PREDIV1 |
               ((PLLMUL - 2u) << RCC_CFGR_PLLMUL_SHIFT);
    RCC_CR |= RCC_CR_PLLON;
    if (!wait_set(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY))
        return;
    /* No flash wait states up to 24 MHz on the value line (RM0041 3.3.3). */
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    if (!wait_set(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL)) {
        RCC_CFGR &= ~RCC_CFGR_SW_MASK;
        return;
    }
    sysclk_hz = SYSCLK_PLL_HZ;
}

/* Oversampling by 16 (RM0041 23.3.4): BRR = fck / baud in 12.4 fixed point,
 * rounded. 24 MHz / 115200 -> 208 (13 + 0/16) -> 115385 baud, +0.16 %. */
static uint32_t usart_brr(uint32_t fck, uint32_t baud)
{
    return (fck + baud / 2u) / baud;
}

/* --- UART --------------------------------------------------------------------- */
void board_uart_irq(int on)
{
    nvic_irq_set(USART1_IRQN, on);
}

void USART1_IRQHandler(void)
{
    uint32_t sr;
    /* Reading SR then DR clears RXNE and ORE (RM0041 23.6.1). */
    while ((sr = USART1_SR) & (USART_SR_RXNE | USART_SR_ORE)) {
        if ((sr & USART_SR_RXNE) && rx_ring_full()) {
            rx_ring_throttle(); /* leave the byte in DR */
            return;
        }
        uint8_t b = (uint8_t)USART1_DR;
        if (sr & USART_SR_ORE)
            rx_ring_overrun();
        if (sr & USART_SR_RXNE)
            rx_ring_put(b);
    }
}

static void uart_init(void)
{
    RCC_APB2ENR |= RCC_APB2ENR_IOPAEN | RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR;
    /* PA9 = USART1_TX: alternate-function push-pull, 10 MHz (CNF 10, MODE 01);
     * PA10 = USART1_RX: input with pull-up (CNF 10, MODE 00, ODR10 = 1)
     * so an open line reads idle (RM0041 8.1.11, Table 20). */
    GPIOA_CRH = (GPIOA_CRH & ~((0xFu << 4) | (0xFu << 8))) | (0x9u << 4) | (0x8u << 8);
    GPIOA_ODR |= 1u << 10;
    USART1_BRR = usart_brr(sysclk_hz, UART_BAUD);
    USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    uart_rx_irq_enable(1);
}

void uart_write(const uint8_t *data, size_t n)
{
    while (n--) {
        while (!(USART1_SR & USART_SR_TXE))
            ;
        USART1_DR = *data++;
    }
}

/* --- cost counter ------------------------------------------------------------ */
const char board_name[] = "stm32vldiscovery";
uint8_t tick_kind;
uint32_t tick_hz;
static uint32_t tick_origin;

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
    clock_init();
    uart_init();
    systick_start();
    tick_kind = TICK_KIND_SYSTICK;
    tick_hz = sysclk_hz;
}
