/*
 * Firmware entry: bring the board up, announce ourselves with a boot HELLO,
 * then serve frames forever.
 *
 * Idle policy: sleep (WFI) between frames, poll while a frame is partly
 * received. The rest of a started frame is normally on its way, and
 * sleeping after every byte is slow under QEMU: each byte then also pays for
 * waking the halted emulated CPU (10,000-image verify on a quiet machine:
 * ~75 s -> ~67 s). The poll is bounded so a frame that never
 * completes (host gone, garbage without a delimiter) does not keep the core
 * busy: after MID_FRAME_POLLS empty polls in a row it sleeps until the next
 * byte. Nothing here runs inside the measured inference (the UART interrupt
 * is masked there), so tick counts do not change.
 */
#include <stdint.h>

#include "board.h"
#include "serve.h"

/* An empty poll is a few tens of instructions, so this many polls last far
 * longer than one byte at the slowest supported baud rate: a healthy frame
 * never sleeps midway. */
#define MID_FRAME_POLLS 100000u

int main(void)
{
    uint32_t empty_polls = 0;

    board_init();
    serve_init();
    serve_send_hello(1, 0xFFFFu);
    for (;;) {
        uint8_t b;
        if (uart_read_byte(&b)) {
            serve_byte(b);
            empty_polls = 0;
        } else if (serve_frame_in_progress() && empty_polls < MID_FRAME_POLLS) {
            empty_polls++;
        } else {
            board_wait_for_interrupt();
        }
    }
}
