# Included by every Cortex-M board.mk after it sets CPU_FLAGS, BOARD_SRCS and
# LDSCRIPT: the arm-none-eabi toolchain, the shared sources of cortexm/, and
# the link flags (no start files: the board's startup.c does that job;
# newlib-nano only for memcpy/memset and the like, nothing that needs
# syscalls links).
TOOLCHAIN_PREFIX ?= arm-none-eabi-
CROSS      := $(TOOLCHAIN_PREFIX)
CC         := $(CROSS)gcc
CXX        := $(CROSS)g++
OBJCOPY    := $(CROSS)objcopy
SIZE       := $(CROSS)size
UART_BAUD  ?= 115200
BOARD_DEFS += -I$(FW)cortexm -DUART_BAUD=$(UART_BAUD)u
BOARD_SRCS += cortexm/cortexm.c
BOARD_LDFLAGS := -nostartfiles --specs=nano.specs -L$(FW)cortexm -T$(LDSCRIPT)
BOARD_LDLIBS  := -Wl,--start-group -lc_nano -lm -lgcc -Wl,--end-group
