/*
 * Firmware entry: bring the board up, announce ourselves with a boot HELLO,
 * then serve frames forever, sleeping (WFI) whenever no byte is waiting.
 */
#include <stdint.h>

#include "board.h"
#include "serve.h"

int main(void)
{
    board_init();
    serve_init();
    serve_send_hello(1, 0xFFFFu);
    for (;;) {
        uint8_t b;
        while (uart_read_byte(&b))
            serve_byte(b);
        board_wait_for_interrupt();
    }
}
