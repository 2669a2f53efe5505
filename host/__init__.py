"""Host side: flash a board or the emulator, and run the serial accuracy check."""
