# Host build (tests): gcc, stdin/stdout as the serial link.
CC         := gcc
CXX        := g++
OBJCOPY    :=
SIZE       := size
CPUFLAGS   :=
BOARD_DEFS :=
BOARD_SRCS := boards/host/board.c
LDSCRIPT   :=
BOARD_LDFLAGS :=
BOARD_LDLIBS  := -lm
