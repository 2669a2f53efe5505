/* Message handling: frames from protocol/ in, HELLO/RESULT/STATS/ERROR out. */
#ifndef SERVE_H
#define SERVE_H

#include <stdint.h>

/* Call once after board_init(); runs runtime_init() and remembers its result. */
void serve_init(void);

/* Send a HELLO (boot = 1: unasked, at boot, seq PROTO_NO_SEQ). */
void serve_send_hello(int boot, uint16_t seq);

/* Feed one received byte; answers complete frames. */
void serve_byte(uint8_t byte);

/* 1 while a frame is partly received (bytes since the last delimiter). */
int serve_frame_in_progress(void);

#endif
