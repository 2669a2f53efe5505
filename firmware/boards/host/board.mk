# Host build (tests): gcc, stdin/stdout as the serial link.
TOOLCHAIN_PREFIX :=
CC         := gcc
CXX        := g++
OBJCOPY    :=
SIZE       := size
CPU_FLAGS  :=
BOARD_DEFS :=
BOARD_SRCS := boards/host/board.c
LDSCRIPT   :=
BOARD_LDFLAGS :=
BOARD_LDLIBS  := -lm
