/* ID (RFC 2971): the client's identification is checked and logged, the
 * server's sent back. Allowed in every state, as the RFC recommends. */
#include "imap/imap_session.h"

#include "log.h"

#include <string.h>

#ifndef PETREL_VERSION
#define PETREL_VERSION "0.1"
#endif

/* RFC 2971 3.3: at most 30 pairs, keys up to 30 octets, values up to 1024. */
#define ID_MAX_PAIRS 30
#define ID_MAX_KEY 30
#define ID_MAX_VALUE 1024
/* Logged bytes of the whole list. */
#define ID_MAX_LOG 2048

static bool is_string(const struct imap_arg *a)
{
    return a->type == IMAP_ARG_QUOTED || a->type == IMAP_ARG_LITERAL || a->type == IMAP_ARG_ATOM;
}

/* Appends s to the log text, printable ASCII only, quotes and backslashes
 * replaced, so a client cannot forge log fields. */
static void log_append(struct buf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len && buf_len(b) < ID_MAX_LOG; i++) {
        char c = s[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            c = '?';
        buf_append(b, &c, 1);
    }
}

void cmd_id(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count != 1 ||
        (cmd->args[0].type != IMAP_ARG_NIL && cmd->args[0].type != IMAP_ARG_LIST)) {
        imap_done(is, "BAD", "ID expects NIL or a list of field/value pairs.");
        return;
    }
    const struct imap_arg *l = &cmd->args[0];
    struct buf text = {0};
    if (l->type == IMAP_ARG_LIST) {
        if (l->count % 2 != 0 || l->count / 2 > ID_MAX_PAIRS) {
            imap_done(is, "BAD", "ID expects at most %d field/value pairs.", ID_MAX_PAIRS);
            return;
        }
        for (size_t i = 0; i < l->count; i += 2) {
            const struct imap_arg *k = &l->list[i], *v = &l->list[i + 1];
            if (!is_string(k) || k->len > ID_MAX_KEY ||
                (v->type != IMAP_ARG_NIL && (!is_string(v) || v->len > ID_MAX_VALUE))) {
                buf_free(&text);
                imap_done(is, "BAD", "Invalid ID field or value.");
                return;
            }
            if (i)
                buf_puts(&text, " ");
            log_append(&text, k->data, k->len);
            buf_puts(&text, "=");
            if (v->type == IMAP_ARG_NIL)
                buf_puts(&text, "NIL");
            else
                log_append(&text, v->data, v->len);
        }
    }
    buf_append(&text, "", 1);
    log_info("\"client id\" session=%s id=\"%s\"", is->s.id, buf_head(&text));
    buf_free(&text);
    imap_untagged(is, "ID (\"name\" \"Petrel\" \"version\" \"%s\")", PETREL_VERSION);
    imap_done(is, "OK", "ID completed.");
}
