/*
 * TEST HARNESS (not shipped): runs a board's board_init() on the host
 * against a simulated register file and prints every register it touched
 * as "0xADDR 0xVALUE" lines, then tick_kind and tick_hz, for
 * tests/firmware/test_board_registers.py.
 *
 * Compiled with -DBOARD_REGISTER_TEST '-DREG(a)=(*fake_reg(a))' and the
 * board's board.c plus the cortexm/ sources it uses. Arguments
 * "0xADDR=0xVALUE" preset registers before board_init() runs, e.g. the
 * ready flags a working crystal and PLL would raise (QEMU leaves them 0).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "board.h"

volatile uint32_t *fake_reg(uint32_t addr);

#define MAX_REGS 256
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

/* Linker symbols the shared start-up code refers to. */
uint32_t _sidata[1], _sdata[4], _edata[1], _sbss[1], _ebss[1], _sstack[16], _estack[1];

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        unsigned long addr, value;
        if (sscanf(argv[i], "%lx=%lx", &addr, &value) != 2) {
            fprintf(stderr, "bad preset %s, expected 0xADDR=0xVALUE\n", argv[i]);
            return 2;
        }
        *fake_reg((uint32_t)addr) = (uint32_t)value;
    }
    board_init();
    for (int i = 0; i < reg_count; i++)
        printf("0x%08X 0x%08X\n", (unsigned)reg_addr[i], (unsigned)reg_value[i]);
    printf("tick_kind %u\ntick_hz %u\n", (unsigned)tick_kind, (unsigned)tick_hz);
    return 0;
}
