/* Reading a stored message's bytes: one petrel_read call (STMT_READ,
 * 002_functions.sql) for len bytes from offset off of message uid in a
 * mailbox of the account. FETCH BODY[] (op_body.c), FETCH BINARY
 * (op_binary.c) and the lazy parse of old messages (mime_store.c) all read
 * bodies this way, in pieces they size themselves. The callback gets one
 * row holding the bytes (fewer at the end of the message), or no row when
 * the message is gone. */
#ifndef PETREL_BODY_READ_H
#define PETREL_BODY_READ_H

#include "db.h"

#include <stdint.h>

void body_read(int64_t account, int64_t mailbox, uint32_t uid, uint64_t off, uint64_t len,
               db_cb *cb, void *ctx);

#endif
