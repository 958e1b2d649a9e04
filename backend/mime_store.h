/* Storing and reading the parsed MIME structure of message bodies
 * (backend/mime, migration 005_mime.sql). */
#ifndef PETREL_MIME_STORE_H
#define PETREL_MIME_STORE_H

#include "backend.h"
#include "mime/mime.h"

/* A finished parse as the four statement parameters (tree, envelope,
 * bodystructure, body) that petrel_*_mime functions take. */
struct mime_blob {
    struct mime_result res;
    struct buf tree;
};

/* Finishes (and frees) parser p into mb. */
void mime_blob_finish(struct mime_blob *mb, struct mime_parser *p);
/* Fills params[0..3]; they point into mb, which must outlive the query call. */
void mime_blob_params(const struct mime_blob *mb, struct db_param params[4]);
void mime_blob_free(struct mime_blob *mb);
/* A parser for a message arriving now (searchable text is not kept yet). */
struct mime_parser *mime_store_parser(void);

/* Parses the bodies of messages stored without a parse (LMTP, older rows)
 * and stores the result, one message after another, then calls done(req, ok).
 * uids[i] is in mailbox_id; the arrays are copied. */
typedef void mime_ensure_cb(struct rpc_req *req, int ok, void *ctx);
void mime_ensure(struct rpc_req *req, int64_t mailbox_id, const uint32_t *uids,
                 const int64_t *blob_ids, size_t n, mime_ensure_cb *done, void *ctx);

#endif
