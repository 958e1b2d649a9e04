/* A backend worker: settings, the database pool, and the RPC server that
 * frontends connect to. One per worker process. */
#ifndef PETREL_BACKEND_H
#define PETREL_BACKEND_H

#include "db.h"
#include "objectid.h"
#include "petrel.pb-c.h"

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

struct backend_settings {
    long workers;
    char *listen;
    char *pg_url;
    char *redis_url;
    char *node;
    char *log_level;
    long db_connections;       /* PostgreSQL connections per worker */
    long rpc_max_frame;        /* largest RPC frame accepted, bytes */
    long rpc_max_inflight;     /* requests in flight per frontend link */
    long max_message_size;     /* largest message stored, bytes */
    long append_max_messages;  /* messages in one MULTIAPPEND */
    long stream_chunk;         /* bytes per streamed body chunk */
    long shutdown_grace;       /* seconds to finish in-flight work on SIGTERM */
    long auth_threads;         /* password-checking threads per worker */
    long auth_cache_size;      /* successful logins remembered per worker */
    long auth_cache_ttl;       /* seconds one is remembered; 0: off */
    char *http_listen;         /* /metrics /healthz /readyz; empty: off */
    char *log_format;          /* logfmt or json */
    long expunge_tombstone_days;   /* QRESYNC: keep expunge tombstones this long; 0: for ever */
    long meta_inline_budget;   /* bytes of bodies one MetaReq may carry inline; 0: none */
    long search_text_max;      /* bytes of decoded searchable text kept per message */
};

struct backend {
    struct ev_loop *loop;
    struct backend_settings *cfg;
    struct db_pool *db;
};

extern struct backend *backend;

struct rpc_link;

/* One request from a frontend, alive from its arrival until its final reply. */
struct rpc_req {
    struct rpc_link *link;      /* NULL once the link closed */
    uint64_t id;
    int64_t account_id;
    char session[64];           /* the frontend's session id, for logs */
    const char *op;             /* operation name, for logs */
    struct rpc_req *next;       /* in the link's in-flight list */
    /* A follow-up frame with this request's id (a Chunk, a StreamAck). */
    void (*on_more)(struct rpc_req *req, const Petrel__Request *msg);
    /* The frontend went away or sent Cancel: stop, then finish the request
     * with rpc_done() once no callback of the op can fire any more. */
    void (*on_cancel)(struct rpc_req *req);
    void *state;                /* the op's own state, owned by the op */
    int cancelled;
    double t0;                  /* arrival (metrics) */
    int m_status;               /* final reply's status; -1: none (yet) */
};

/* Sends resp for req. With resp->more == 0 this is the final reply: req is
 * freed and must not be used afterwards. */
void rpc_reply(struct rpc_req *req, Petrel__Response *resp);
/* A final reply carrying only a status and a reason. */
void rpc_fail(struct rpc_req *req, Petrel__Status status, const char *text);
/* Frees req without a reply (after cancellation). */
void rpc_done(struct rpc_req *req);
/* Maps a failed database result to an RPC failure. */
void rpc_fail_db(struct rpc_req *req, const struct db_result *r);

struct rpc_op {
    Petrel__Request__OpCase op;
    const char *name;
    void (*start)(struct rpc_req *req, const Petrel__Request *msg);
};
extern const struct rpc_op rpc_ops[];
extern const int rpc_ops_count;

int rpc_server_start(const char *listen_spec);
void rpc_server_stop(void);
/* SIGTERM: stops accepting and tells every frontend link to go away; the
 * frontends close their links once nothing of theirs is in flight, and the
 * loop breaks when the last link is gone. */
void rpc_server_drain(void);
bool rpc_server_draining(void);

/* Statement indexes into db_statements[] (db_statements.c). */
enum stmt {
    STMT_LOGIN_LOOKUP,
    STMT_LIST,
    STMT_MAILBOX_CREATE,
    STMT_SELECT,
    STMT_STATUS,
    STMT_META,
    STMT_READ,
    STMT_APPEND,           /* a whole-body APPEND (020_append_fields_from_backend.sql) */
    STMT_BLOB_BEGIN,
    STMT_BLOB_PUT,
    STMT_LMTP_RCPT,
    STMT_DELIVER_BEGIN,
    STMT_COPY,
    STMT_MIME,
    STMT_BLOB_SET_MIME,
    STMT_MAILBOX_DELETE,
    STMT_MAILBOX_RENAME,
    STMT_SUBSCRIBE,
    STMT_LIST_EXT,
    STMT_CHANGES,          /* CONDSTORE/QRESYNC (007_changes.sql) */
    STMT_META_SINCE,
    STMT_STORE_COND,
    STMT_EXPUNGE_PRUNE,
    STMT_SEARCH_UNPARSED,
    STMT_META_CRLF,
    STMT_STATUS_DELETED,
    STMT_META_OBJECTID,    /* FETCH EMAILID/THREADID/SAVEDATE (010_objectid_savedate.sql) */
    STMT_APPEND_STAGE,     /* streamed APPEND / MULTIAPPEND (011_append_staged.sql) */
    STMT_APPEND_STAGED,
    STMT_META_INLINE,      /* FETCH BODY[] in one round trip (012_inline_fetch_parsed_delivery.sql) */
    STMT_DELIVER_MIME,     /* LMTP parsed on arrival (012) */
    STMT_DELIVER_DATA_MIME,
};

/* The parsed structure of messages, for FETCH ENVELOPE/BODYSTRUCTURE/BODY. */
struct meta_mime_row {
    uint32_t uid;
    char *envelope, *bodystructure, *body;   /* owned */
};
struct meta_mime {
    struct meta_mime_row *rows;              /* UID order */
    size_t n;
};
/* EMAILID, THREADID and SAVEDATE of messages (petrel_meta_objectid), in the
 * IMAP form (objectid.h). */
struct meta_objectid_row {
    uint32_t uid;
    char emailid[OBJECTID_LEN], threadid[OBJECTID_LEN];   /* threadid "": NIL */
    int64_t savedate;
};
struct meta_objectids {
    struct meta_objectid_row *rows;          /* UID order */
    size_t n;
};
/* Sends rows of the petrel_meta* functions as MetaResp batches, with the
 * structure from mm and the ids from oids (either may be NULL). A batch
 * carrying inline bodies ends once they reach inline_cut bytes. The last
 * batch ends req. */
void reply_meta_rows(struct rpc_req *req, const PGresult *res, const struct meta_mime *mm,
                     const struct meta_objectids *oids, size_t inline_cut);
/* Initialises m from the columns col.. col+3 of a row: uid, flags, keywords
 * (text[]'s text form), modseq; the short form that CHANGES and STORE
 * answer with. The caller frees the keywords with pg_free_strings. */
void meta_flags_from_row(Petrel__MessageMeta *m, const PGresult *res, int row, int col);

/* Formats UID ranges as two PostgreSQL int8[] literals "{1,5}" / "{3,9}". */
void uid_ranges_to_arrays(const Petrel__UidRanges *r, char **lo_r, char **hi_r);

#endif
