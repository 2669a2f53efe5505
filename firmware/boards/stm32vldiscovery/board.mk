# STM32VLDISCOVERY: STM32F100RB, Cortex-M3 (ARMv7-M, no DSP extension, no FPU).
CPU_FLAGS  := -mcpu=cortex-m3 -mthumb -mfloat-abi=soft
HSE_HZ     ?= 8000000
BOARD_DEFS := -DHSE_HZ=$(HSE_HZ)u
BOARD_SRCS := boards/stm32vldiscovery/board.c boards/stm32vldiscovery/startup.c
LDSCRIPT   := $(FW)boards/stm32vldiscovery/stm32vldiscovery.ld
include $(FW)cortexm/cortexm.mk
