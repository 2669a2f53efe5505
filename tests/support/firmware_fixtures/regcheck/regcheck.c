/*
 * TEST HARNESS (not shipped): runs boards/stm32f405/board.c's board_init()
 * on the host against a simulated register file and prints every register
 * it touched as "0xADDR 0xVALUE" lines, for tests/test_board_registers.py.
 *
 * Compiled with -DBOARD_REGISTER_TEST '-DREG(a)=(*fake_reg(a))'.
 * -DCLOCKS_READY=1 presets the ready flags a working crystal and PLL would
 * raise (HSERDY, PLLRDY, SWS = PLL); 0 leaves them clear, like QEMU.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "board.h"

volatile uint32_t *fake_reg(uint32_t addr);

#define MAX_REGS 128
static uint32_t reg_addr[MAX_REGS];
static uint32_t reg_value[MAX_REGS];
static int reg_count;

volatile uint32_t *fake_reg(uint32_t addr)
{
    for (int i = 0; i < reg_count; i++)
        if (reg_addr[i] == addr)
            return &reg_value[i];
    if (reg_count == MAX_REGS) {
        fprintf(stderr, "too many registers\n");
        exit(1);
    }
    reg_addr[reg_count] = addr;
    reg_value[reg_count] = 0;
    return &reg_value[reg_count++];
}

/* Linker symbols board.c refers to. */
uint32_t _sdata[4], _ebss[1], _sstack[16], _estack[1];

int main(void)
{
    *fake_reg(0x40023804u) = 0x24003010u; /* RCC_PLLCFGR reset value (RM0090 7.3.2) */
    if (CLOCKS_READY) {
        *fake_reg(0x40023800u) = (1u << 17) | (1u << 25); /* RCC_CR: HSERDY, PLLRDY */
        *fake_reg(0x40023808u) = 2u << 2;                 /* RCC_CFGR: SWS = PLL */
    }
    board_init();
    for (int i = 0; i < reg_count; i++)
        printf("0x%08X 0x%08X\n", (unsigned)reg_addr[i], (unsigned)reg_value[i]);
    printf("tick_kind %u\ntick_hz %u\n", (unsigned)tick_kind, (unsigned)tick_hz);
    return 0;
}
