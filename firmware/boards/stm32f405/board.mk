# STM32F405 (Cortex-M4F): toolchain, CPU flags, sources, linker script.
TOOLCHAIN_PREFIX ?= arm-none-eabi-
CROSS      := $(TOOLCHAIN_PREFIX)
CC         := $(CROSS)gcc
CXX        := $(CROSS)g++
OBJCOPY    := $(CROSS)objcopy
SIZE       := $(CROSS)size
CPU_FLAGS  := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
# Board settings (see board.c): crystal, bypass, baud rate.
HSE_HZ     ?= 8000000
HSE_BYPASS ?= 0
UART_BAUD  ?= 115200
BOARD_DEFS := -DHSE_HZ=$(HSE_HZ)u -DHSE_BYPASS=$(HSE_BYPASS) -DUART_BAUD=$(UART_BAUD)u
BOARD_SRCS := boards/stm32f405/board.c boards/stm32f405/startup.c
LDSCRIPT   := $(FW)boards/stm32f405/stm32f405.ld
# No start files (startup.c does that job), newlib-nano only for
# memcpy/memset and the like: nothing that needs syscalls links.
BOARD_LDFLAGS := -nostartfiles --specs=nano.specs -T$(LDSCRIPT)
BOARD_LDLIBS  := -Wl,--start-group -lc_nano -lm -lgcc -Wl,--end-group
