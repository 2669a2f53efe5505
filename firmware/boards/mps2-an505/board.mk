# Arm MPS2 AN505: Cortex-M33 (ARMv8-M Mainline, DSP, single-precision FPU).
CPU_FLAGS  := -mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
BOARD_SRCS := boards/mps2-an505/board.c boards/mps2-an505/startup.c cortexm/cmsdk.c
LDSCRIPT   := $(FW)boards/mps2-an505/mps2-an505.ld
include $(FW)cortexm/cortexm.mk
