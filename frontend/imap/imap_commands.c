/* The IMAP command table: one row per command, with the states it is allowed
 * in and whether it has a UID form. A new command is one file and one row. */
#include "imap/imap_session.h"

#include <strings.h>

#define CMD(name) void cmd_##name(struct imap_session *, const struct imap_command *);
CMD(capability) CMD(noop) CMD(logout) CMD(login) CMD(select) CMD(examine) CMD(close)
CMD(unselect) CMD(list) CMD(create) CMD(status) CMD(append) CMD(fetch) CMD(store)
CMD(expunge) CMD(idle) CMD(copy) CMD(move)
CMD(starttls)
CMD(delete) CMD(rename) CMD(subscribe) CMD(unsubscribe) CMD(lsub) CMD(namespace) CMD(id)
CMD(authenticate)
CMD(search)
CMD(enable)
#undef CMD

#define ANY (CMD_NOTAUTH | CMD_AUTH)

static const struct imap_cmd_def commands[] = {
    { "CAPABILITY", ANY, cmd_capability },
    { "NOOP", ANY, cmd_noop },
    { "IDLE", CMD_AUTH, cmd_idle },
    { "LOGOUT", ANY, cmd_logout },
    { "LOGIN", CMD_NOTAUTH, cmd_login },
    { "AUTHENTICATE", CMD_NOTAUTH, cmd_authenticate },
    { "ID", ANY, cmd_id },
    { "STARTTLS", CMD_NOTAUTH, cmd_starttls },
    { "SELECT", CMD_AUTH, cmd_select },
    { "EXAMINE", CMD_AUTH, cmd_examine },
    { "LIST", CMD_AUTH, cmd_list },
    { "CREATE", CMD_AUTH, cmd_create },
    { "DELETE", CMD_AUTH, cmd_delete },
    { "RENAME", CMD_AUTH, cmd_rename },
    { "SUBSCRIBE", CMD_AUTH, cmd_subscribe },
    { "UNSUBSCRIBE", CMD_AUTH, cmd_unsubscribe },
    { "LSUB", CMD_AUTH, cmd_lsub },
    { "NAMESPACE", CMD_AUTH, cmd_namespace },
    { "STATUS", CMD_AUTH, cmd_status },
    { "ENABLE", CMD_AUTH, cmd_enable },
    { "APPEND", CMD_AUTH, cmd_append },
    { "CHECK", CMD_SELECTED, cmd_noop },
    { "CLOSE", CMD_SELECTED, cmd_close },
    { "UNSELECT", CMD_SELECTED, cmd_unselect },
    { "EXPUNGE", CMD_SELECTED | CMD_UID, cmd_expunge },
    { "COPY", CMD_SELECTED | CMD_UID, cmd_copy },
    { "MOVE", CMD_SELECTED | CMD_UID, cmd_move },
    { "FETCH", CMD_SELECTED | CMD_UID, cmd_fetch },
    { "STORE", CMD_SELECTED | CMD_UID, cmd_store },
    { "SEARCH", CMD_SELECTED | CMD_UID, cmd_search },
};

const struct imap_cmd_def *imap_find_command(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strlen(commands[i].name) == len && strncasecmp(commands[i].name, name, len) == 0)
            return &commands[i];
    return 0;
}
