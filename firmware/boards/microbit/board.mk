# BBC micro:bit v1: nRF51822, Cortex-M0 (ARMv6-M: no DSP, no FPU, no SysTick).
CPU_FLAGS  := -mcpu=cortex-m0 -mthumb -mfloat-abi=soft
BOARD_SRCS := boards/microbit/board.c boards/microbit/startup.c
LDSCRIPT   := $(FW)boards/microbit/microbit.ld
include $(FW)cortexm/cortexm.mk
