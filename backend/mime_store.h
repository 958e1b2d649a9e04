/* Storing and reading the parsed MIME structure of message bodies
 * (backend/mime, migrations 005_mime.sql and 006_search.sql). */
#ifndef PETREL_MIME_STORE_H
#define PETREL_MIME_STORE_H

#include "backend.h"
#include "mime/mime.h"

/* A parser for a message arriving now, collecting its searchable text
 * (search_text.h) as it goes. */
struct mime_store;
struct mime_store *mime_store_parser(void);
void mime_store_feed(struct mime_store *s, const void *data, size_t len);
/* Frees a parser without a result (an aborted upload). NULL is fine. */
void mime_store_free(struct mime_store *s);

/* A finished parse as the statement parameters that petrel_*_mime functions
 * take (006_search.sql): tree, envelope, bodystructure, body, then the
 * searchable header text, body text and the Date: header's date. */
#define MIME_BLOB_NPARAMS 7
#define MIME_BLOB_NFIELDS 5
struct mime_blob {
    struct mime_result res;
    struct buf tree;
    struct buf headers;       /* NUL-terminated: "name: value\n" per top-level field */
    struct buf text;          /* NUL-terminated: body text, embedded messages' headers */
    char sentdate[16];        /* "YYYY-MM-DD", or "" */
    /* NUL-terminated: the values of From, To, Cc, Bcc, Subject in headers
     * (several joined by "\n"), as blob_text's h_* columns hold them. */
    struct buf fields[MIME_BLOB_NFIELDS];
};

/* Finishes (and frees) s into mb. */
void mime_blob_finish(struct mime_blob *mb, struct mime_store *s);
/* Fills params[0..MIME_BLOB_NPARAMS-1]; they point into mb, which must
 * outlive the query call. */
void mime_blob_params(const struct mime_blob *mb, struct db_param params[MIME_BLOB_NPARAMS]);
/* Fills params[0..MIME_BLOB_NFIELDS-1] with the h_from, h_to, h_cc, h_bcc,
 * h_subject values (text), pointing into mb. What petrel__header_field
 * computes in SQL (006_search.sql), without parsing and planning a SQL
 * function five times per message. */
void mime_blob_field_params(const struct mime_blob *mb, struct db_param params[MIME_BLOB_NFIELDS]);
void mime_blob_free(struct mime_blob *mb);

/* Parses the bodies of messages stored without a parse (LMTP deliveries
 * before migration 012) and stores the result, one message after another,
 * then calls done(req, ok).
 * uids[i] is in mailbox_id; the arrays are copied. */
typedef void mime_ensure_cb(struct rpc_req *req, int ok, void *ctx);
void mime_ensure(struct rpc_req *req, int64_t mailbox_id, const uint32_t *uids,
                 const int64_t *blob_ids, size_t n, mime_ensure_cb *done, void *ctx);

/* The stored part tree of one message, for the ops that resolve sections
 * (op_body.c, op_binary.c). A message stored unparsed is parsed first. done
 * is called exactly once, also after a cancel (req->cancelled: the caller
 * finishes). The tree is valid only during the call. */
enum mime_load {
    MIME_LOADED,       /* tree is set */
    MIME_GONE,         /* no such message (expunged) */
    MIME_UNREADABLE,   /* the stored tree does not decode */
    MIME_DB_FAILED,    /* failed is the database result */
    MIME_PARSE_FAILED, /* parsing the unparsed message failed (database) */
};
typedef void mime_load_cb(struct rpc_req *req, enum mime_load result, const struct db_result *failed,
                          const struct mime_tree *tree, void *ctx);
void mime_tree_load(struct rpc_req *req, int64_t mailbox_id, uint32_t uid, mime_load_cb *done, void *ctx);

#endif
