/* An IMAP session: the state machine of RFC 9051 section 3, the command in
 * progress, and the selected mailbox's sequence map (its UIDs in order). */
#ifndef PETREL_IMAP_SESSION_H
#define PETREL_IMAP_SESSION_H

#include "frontend.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"

#include <stdint.h>

enum imap_state { IMAP_NOTAUTH, IMAP_AUTH, IMAP_SELECTED, IMAP_LOGOUT };

struct imap_session;

/* A command's flags in the table (imap_commands.c). */
enum {
    CMD_NOTAUTH = 1 << 0,    /* allowed before login */
    CMD_AUTH = 1 << 1,       /* allowed after login, mailbox selected or not */
    CMD_SELECTED = 1 << 2,   /* allowed only with a selected mailbox */
    CMD_UID = 1 << 3,        /* has a UID form */
};

struct imap_cmd_def {
    const char *name;
    unsigned flags;
    /* Starts the command. It ends, now or from a callback, with imap_done(). */
    void (*run)(struct imap_session *is, const struct imap_command *cmd);
};

const struct imap_cmd_def *imap_find_command(const char *name, size_t len);

struct imap_selected {
    int64_t mailbox_id;
    char *name;                /* UTF-8 */
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint64_t highestmodseq;
    bool read_only;
    uint32_t *uids;            /* ascending; index + 1 is the sequence number */
    uint32_t count;
    uint32_t cap;
    /* RFC 5182 "$": the UIDs the last SEARCH RETURN (SAVE) found, ascending.
     * Kept as UIDs and matched against the map when used, so messages
     * expunged since drop out; part of the selection, so SELECT, EXAMINE,
     * UNSELECT and CLOSE empty it. */
    uint32_t *saved;
    size_t nsaved;
};

struct imap_append;

/* Bytes in a tag. A constant, not a setting: the tag is echoed in every
 * answer and sits in every session (memory per idle session counts at
 * 50,000 sessions); RFC 9051 sets no bound and real clients' tags are a
 * few bytes. A longer one gets BAD, untagged. */
#define IMAP_MAX_TAG 64

struct imap_session {
    struct session s;
    enum imap_state state;
    struct imap_reader reader;
    bool busy;                  /* a command is running; input waits */
    bool in_process;            /* inside the input loop (re-entrancy guard) */
    char tag[IMAP_MAX_TAG + 16];   /* of the running command ("*" when it has none) */
    const struct imap_cmd_def *def;
    struct imap_command cmd;    /* parsed arguments of the running command */
    bool uid_cmd;               /* the running command came as UID <cmd> */
    void *cmd_state;            /* the running command's own state */
    void (*cmd_free)(void *state);
    void (*cmd_drain)(struct imap_session *is);   /* output drained */
    struct imap_append *append; /* APPEND whose literal is streaming */
    struct imap_selected sel;
    int bad_count;              /* consecutive BADs, to cut off garbage */
    double cmd_t0;              /* when the running command arrived (metrics) */
    int m_cmd;                  /* its command label (frontend_metrics.h) */
    struct imap_idle *idle;     /* IDLE running: input goes to imap_idle_input() */
    bool changed;               /* the cluster says the selected mailbox changed */
    bool condstore;             /* RFC 7162: a CONDSTORE enabling command was seen */
    bool qresync;               /* ENABLE QRESYNC: VANISHED instead of EXPUNGE */
    bool imap4rev2;             /* ENABLE IMAP4rev2: RFC 9051 replaces RFC 3501 */
    bool utf8_accept;           /* ENABLE UTF8=ACCEPT (RFC 6855) */
    /* The running command reads its own input lines (AUTHENTICATE's SASL
     * responses): while set, the input loop calls it instead of the command
     * reader; true means it took input. Cleared when the command ends. */
    bool (*cmd_input)(struct imap_session *is);
};

/* Ends the running command with a tagged response: status is "OK", "NO" or
 * "BAD"; text may start with a response code. Then reads on. */
void imap_done(struct imap_session *is, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends a command whose RPC failed, mapping the status to NO [code] text. */
void imap_done_rpc(struct imap_session *is, const Petrel__Response *resp);
/* Counts the running command's tagged answer ("OK", "NO", "BAD") in the
 * metrics; imap_done() does it, a command answering otherwise calls this. */
void imap_count_result(struct imap_session *is, const char *status);
void imap_untagged(struct imap_session *is, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Output queue of the client connection. */
static inline struct buf *imap_out(struct imap_session *is) { return &is->s.conn.out; }
void imap_flush(struct imap_session *is);

const char *imap_capabilities(const struct imap_session *is);
/* STARTTLS may be used now: before login, not yet TLS, TLS configured. */
bool imap_starttls_usable(const struct imap_session *is);
/* The settings' limits (imap_max_args, imap_max_depth) for parsing a
 * command's arguments; APPEND's pieces after a literal use them too. */
const struct imap_parse_limits *imap_parse_limits(void);
/* Forgets all unprocessed input: what conn.in holds and the reader's state
 * (STARTTLS: nothing sent in cleartext may be read as a command). */
void imap_input_reset(struct imap_session *is);

/* Sequence map helpers (imap_mailbox.c). */
uint32_t imap_seq_of_uid(const struct imap_selected *sel, uint32_t uid);   /* 0: absent */
void imap_sel_clear(struct imap_selected *sel);
void imap_sel_set_uids(struct imap_selected *sel, const uint32_t *uids, size_t n);
/* Removes uid from the map and sends "* n EXPUNGE" (unless silent; with
 * QRESYNC enabled "* VANISHED uid"). Many at once: imap_sel_remove(). */
void imap_sel_expunge(struct imap_session *is, uint32_t uid, bool silent);
void imap_sel_append(struct imap_selected *sel, uint32_t uid);
/* Replaces the saved search result ("$") with uids (ascending). */
void imap_sel_save_result(struct imap_selected *sel, const uint32_t *uids, size_t n);
/* Resolves a sequence set or UID set argument ("$": the saved search result)
 * to UID ranges of messages in the map. Returns 0, or -1 with *error_r. */
int imap_resolve_set(struct imap_session *is, const char *text, size_t len, bool uid,
                     Petrel__UidRanges *out, const char **error_r);
/* Answers a set that imap_resolve_set() or imap_seqset_parse() refused:
 * NO [LIMIT] over imap_max_set_ranges, else BAD naming the command. */
void imap_done_set_error(struct imap_session *is, const char *command, const char *err);
void imap_ranges_free(Petrel__UidRanges *r);

/* Flags. */
int imap_parse_flags(const struct imap_arg *arg, uint32_t *flags_r, char ***keywords_r,
                     size_t *nkw_r);
void imap_write_flags(struct buf *out, uint32_t flags, char *const *keywords, size_t nkw);
void imap_free_keywords(char **kw, size_t n);

/* Copies an argument's string into a NUL-terminated malloc'd string, or NULL
 * if it is not an astring or holds a NUL. */
char *imap_arg_strdup(const struct imap_arg *arg);
/* Mailbox names travel as UTF-8 once the client enabled IMAP4rev2 (RFC 9051
 * 5.1) or UTF8=ACCEPT (RFC 6855 3), as modified UTF-7 before (RFC 3501
 * 5.1.3). */
static inline bool imap_utf8_names(const struct imap_session *is)
{
    return is->imap4rev2 || is->utf8_accept;
}
/* A mailbox name argument in the session's form decoded to the stored UTF-8
 * form: in Unicode NFC, INBOX in upper case; malloc'd, or NULL if the name
 * is invalid. */
char *imap_mailbox_name(const struct imap_session *is, const struct imap_arg *arg);
/* imap_mailbox_name, and in *sent_r the name as the client sent it (UTF-8,
 * malloc'd) when NFC changed it, else NULL: what RFC 9051's OLDNAME
 * reports. */
char *imap_mailbox_name_sent(const struct imap_session *is, const struct imap_arg *arg,
                             char **sent_r);
/* What imap_mailbox_name_sent gave, kept as a command's state (is->cmd_state,
 * freed by imap_named_free) until its answer reports OLDNAME. */
struct imap_named {
    char *name;   /* as stored: NFC */
    char *sent;   /* as sent, when NFC changed it; else NULL */
};
/* Makes it the command's state, owning name and sent. */
struct imap_named *imap_named_state(struct imap_session *is, char *name, char *sent);
/* RFC 9051 6.3.9.7: after SELECT/EXAMINE, CREATE, RENAME or DELETE of a name
 * that NFC changed (sent not NULL), tells an IMAP4rev2 client the name it
 * now has: "* LIST (attrs) "/" name ("OLDNAME" (sent))". Nothing otherwise. */
void imap_write_oldname(struct imap_session *is, const char *attrs, const char *name,
                        const char *sent);
/* Writes a stored (UTF-8) mailbox name as an IMAP astring in the session's
 * form. */
void imap_write_mailbox(const struct imap_session *is, struct buf *out, const char *utf8);

/* LOGIN's backend check and completion, shared with AUTHENTICATE
 * (cmd_login.c): ends the running command. */
void imap_login_start(struct imap_session *is, const char *user, const char *pass);

/* IDLE (cmd_idle.c): while is->idle, the input loop offers each line to
 * imap_idle_input() (true: a line was taken). imap_idle_free() ends it. */
bool imap_idle_input(struct imap_session *is);
void imap_idle_free(struct imap_session *is);
/* Kick and change hooks for cluster_state.c; pass to cluster_session_login(). */
struct cluster_hooks;
extern const struct cluster_hooks imap_cluster_hooks;

/* Resynchronises the selected mailbox with the backend and reports changes
 * made by other sessions, then calls done. */
void imap_sync(struct imap_session *is, void (*done)(struct imap_session *is));

/* APPEND's literal streaming, driven by the input loop (cmd_append.c). */
int imap_append_literal(struct imap_session *is, const struct imap_literal *lit,
                        const char *text, size_t len);
void imap_append_data(struct imap_session *is, const char *p, size_t n, bool last);
void imap_append_finish(struct imap_session *is, const char *rest, size_t len);
void imap_append_abort(struct imap_session *is);
/* The append's RPC call was cancelled by someone else; drop the handle. */
void imap_append_forget_call(struct imap_session *is);
/* Too many chunks unacknowledged: stop reading input until the backend catches up. */
bool imap_append_blocked(const struct imap_session *is);

#endif
