/* OBJECTID identifiers between their IMAP and database forms (objectid.h). */
#include "objectid.h"

#include <string.h>

static bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool objectid_format(char kind, const char *uuid, char out[OBJECTID_LEN])
{
    out[0] = '\0';
    if (!uuid || strlen(uuid) != OBJECTID_UUID_LEN - 1)
        return false;
    size_t n = 0;
    out[n++] = kind;
    for (const char *p = uuid; *p; p++) {
        if (*p == '-')
            continue;
        /* PostgreSQL writes lower case; anything else is not a UUID. */
        if (!is_hex(*p) || n >= OBJECTID_LEN - 1) {
            out[0] = '\0';
            return false;
        }
        out[n++] = *p;
    }
    if (n != OBJECTID_LEN - 1) {
        out[0] = '\0';
        return false;
    }
    out[n] = '\0';
    return true;
}

bool objectid_parse(char kind, const char *id, char uuid[OBJECTID_UUID_LEN])
{
    uuid[0] = '\0';
    /* Ids compare as strings (RFC 8474 4): "f..." or upper-case hex is
     * another id, one we never hand out. */
    if (!id || strlen(id) != OBJECTID_LEN - 1 || id[0] != kind)
        return false;
    size_t n = 0;
    for (int i = 0; i < 32; i++) {
        if (!is_hex(id[1 + i])) {
            uuid[0] = '\0';
            return false;
        }
        if (i == 8 || i == 12 || i == 16 || i == 20)
            uuid[n++] = '-';
        uuid[n++] = id[1 + i];
    }
    uuid[n] = '\0';
    return true;
}
