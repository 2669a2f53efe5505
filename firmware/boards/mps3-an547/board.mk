# Arm MPS3 AN547: Cortex-M55 (ARMv8.1-M Mainline, Helium/MVE, FPU).
CPU_FLAGS  := -mcpu=cortex-m55 -mthumb -mfloat-abi=hard
BOARD_SRCS := boards/mps3-an547/board.c boards/mps3-an547/startup.c cortexm/cmsdk.c
LDSCRIPT   := $(FW)boards/mps3-an547/mps3-an547.ld
include $(FW)cortexm/cortexm.mk
