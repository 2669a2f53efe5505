# Arm MPS2 AN500: Cortex-M7 (ARMv7E-M, DSP, FPU).
CPU_FLAGS  := -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
BOARD_SRCS := boards/mps2-an500/board.c boards/mps2-an500/startup.c cortexm/cmsdk.c
LDSCRIPT   := $(FW)boards/mps2-an500/mps2-an500.ld
include $(FW)cortexm/cortexm.mk
