#include "frame.h"

int frame_peek(const struct buf *b, size_t max_payload, const uint8_t **payload_r, size_t *len_r)
{
    if (buf_len(b) < FRAME_HEADER_SIZE)
        return 0;
    const uint8_t *h = (const uint8_t *)buf_head(b);
    size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    if (len > max_payload)
        return -1;
    if (buf_len(b) - FRAME_HEADER_SIZE < len)
        return 0;
    *payload_r = h + FRAME_HEADER_SIZE;
    *len_r = len;
    return 1;
}

void frame_consume(struct buf *b, size_t len) { buf_consume(b, FRAME_HEADER_SIZE + len); }

void frame_append(struct buf *out, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    buf_reserve(out, FRAME_HEADER_SIZE + len);
    uint8_t *p = (uint8_t *)out->data + out->end;
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    protobuf_c_message_pack(msg, p + FRAME_HEADER_SIZE);
    out->end += FRAME_HEADER_SIZE + len;
}

const char *frame_request_op_name(const Petrel__Request *r)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&petrel__request__descriptor, (unsigned)r->op_case);
    return f ? f->name : "none";
}
