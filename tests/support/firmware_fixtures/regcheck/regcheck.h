/* TEST HARNESS: prototype board.c sees before its REG() expands. */
#include <stdint.h>
volatile uint32_t *fake_reg(uint32_t addr);
