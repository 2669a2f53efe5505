"""Stage 4: Cortex-M firmware sources (board support, serial protocol, runtimes).

Shipped as package data so an installed lenet-mcu can build firmware."""

from pathlib import Path

FIRMWARE_DIR = Path(__file__).resolve().parent
