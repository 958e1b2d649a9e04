/* CONDSTORE and QRESYNC (RFC 7162) for IMAP sessions: the "what changed
 * since modseq N" call (ChangesReq, backend/op_changes.c), reporting of
 * changes in the forms the session enabled, and small shared helpers.
 *
 * A session keeps the highestmodseq it has reported up to in
 * is->sel.highestmodseq (SELECT sets it, imap_sync() advances it, and this
 * session's own STORE / EXPUNGE advance it when theirs was the only change).
 * After a CONDSTORE enabling command (is->condstore) every unsolicited FETCH
 * carries UID and MODSEQ; after ENABLE QRESYNC (is->qresync) expunges are
 * reported as VANISHED instead of EXPUNGE. */
#ifndef PETREL_IMAP_CONDSTORE_H
#define PETREL_IMAP_CONDSTORE_H

#include "imap/imap_session.h"

#include <stdbool.h>
#include <stdint.h>

struct imap_change {
    uint32_t uid, flags;
    uint64_t modseq;
    char **keywords;
    size_t nkw;
};

/* One ChangesResp, all batches put together. */
struct imap_changes {
    uint64_t highestmodseq;
    uint32_t uidnext, uidvalidity;
    bool too_old;                 /* vanished is incomplete: compare UID lists */
    struct imap_change *changed;  /* by uid */
    size_t nchanged, cap_changed;
    uint32_t *vanished;           /* ascending */
    size_t nvanished, cap_vanished;
};

struct imap_changes_call;

/* The answer: failed is NULL on success (ch complete), else the failed
 * response (ch then partial or empty). ch belongs to the call. */
typedef void imap_changes_cb(struct imap_session *is, const Petrel__Response *failed,
                             struct imap_changes *ch, void *arg);

/* Asks the backend what changed in mailbox_id since `since`. The handle
 * belongs to the caller's command state: free it with
 * imap_changes_call_free() when that state goes (after the callback, or
 * after the session's calls were cancelled; it never cancels the call). */
struct imap_changes_call *imap_changes_start(struct imap_session *is, int64_t mailbox_id,
                                             uint64_t since, imap_changes_cb *cb, void *arg);
void imap_changes_call_free(struct imap_changes_call *c);

/* A CONDSTORE enabling command was used (RFC 7162 3.1). The first time, with
 * a mailbox selected, this sends "* OK [HIGHESTMODSEQ n]". */
void imap_condstore_enable(struct imap_session *is);

/* A mod-sequence value argument: digits, at most 2^63-1 (RFC 7162
 * mod-sequence-valzer; zero only when allow_zero). */
bool imap_parse_modseq(const struct imap_arg *a, bool allow_zero, uint64_t *out);

/* Writes ascending UIDs as a compact set, e.g. "1:3,7". */
void imap_write_uid_set(struct buf *out, const uint32_t *uids, size_t n);
/* "* seq FETCH (UID u FLAGS (...) MODSEQ (m))" for a change of a message
 * in the map; UID and MODSEQ only with CONDSTORE or QRESYNC enabled, or
 * when force_uid. */
void imap_write_change(struct imap_session *is, uint32_t seq, const struct imap_change *c,
                       bool force_uid);

/* Removes n UIDs (any order; those not in the map are skipped) from the
 * map at once and, unless silent, reports them: "* VANISHED set" with
 * QRESYNC enabled, else "* n EXPUNGE" each, in ascending order. */
void imap_sel_remove(struct imap_session *is, const uint32_t *uids, size_t n, bool silent);

/* This session's own change got modseq: when it is exactly the next one,
 * nothing else happened meanwhile and the session's view advances to it, so
 * the next resync does not report the change back. */
void imap_sel_own_change(struct imap_session *is, uint64_t modseq);

/* Applies changes to the session: vanished UIDs in the map go (VANISHED or
 * EXPUNGE), new UIDs above the map's highest join it (EXISTS), changed
 * messages of the map are reported as FETCH; then highestmodseq/uidnext. */
void imap_apply_changes(struct imap_session *is, const struct imap_changes *ch);

/* SELECT/EXAMINE (QRESYNC (...)): reports VANISHED (EARLIER) and FETCH for
 * what changed since the client's modseq. cmd_select.c calls it once the
 * mailbox is selected, with cmd_state free; finish writes the tagged answer
 * (also when the backend fails: the mailbox is selected either way). known
 * is the client's known-uids as sent (NULL: every UID up to the highest);
 * the caller has checked its syntax. */
void imap_qresync_select(struct imap_session *is, uint64_t modseq, const char *known,
                         size_t known_len, void (*finish)(struct imap_session *is));

/* Writes "* VANISHED (EARLIER) set" for the UIDs in `set` (raw UID ranges,
 * as the client sent them) that ch says vanished and that are not in the
 * session's map; with ch->too_old every UID of set up to max_uid that is not
 * in the map. Nothing when none. */
void imap_write_vanished_earlier(struct imap_session *is, const struct imap_changes *ch,
                                 const struct imap_seqset *set, uint32_t max_uid);

#endif
