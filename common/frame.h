/* RPC framing: a 4-byte big-endian payload length, then a protobuf-encoded
 * petrel.Request or petrel.Response (proto/petrel.proto). The length is checked
 * against the receiver's limit before anything is allocated. */
#ifndef PETREL_FRAME_H
#define PETREL_FRAME_H

#include "buf.h"
#include "petrel.pb-c.h"

#include <stdint.h>

#define FRAME_HEADER_SIZE 4

/* 1: a whole frame is at the head of b (*payload_r, *len_r point into b);
 * 0: more bytes are needed; -1: the announced length exceeds max_payload. */
int frame_peek(const struct buf *b, size_t max_payload, const uint8_t **payload_r, size_t *len_r);
/* Drops the frame of payload length len from the head of b. */
void frame_consume(struct buf *b, size_t len);
void frame_append(struct buf *out, const ProtobufCMessage *msg);

/* The name of the operation a request or response carries, for logs. */
const char *frame_request_op_name(const Petrel__Request *r);

#endif
