/* Password hashing and checking on top of libcrypt (crypt_gensalt_rn,
 * crypt_rn), so every scheme libcrypt knows is accepted at login. */
#include "password.h"

#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* yescrypt of a random password at the default cost: same work as a real
 * default-cost hash, and no password verifies against it in practice. */
static const char dummy_hash[] =
    "$y$j9T$M0.LIS4pQkPEDWwwHic4g.$TpL9hoPJOBlKJ0frPlyy/14AV0n9Z9ZOR2KSjr4UQtB";

const char *password_dummy_hash(void)
{
    return dummy_hash;
}

/* struct crypt_data is ~32 KiB: heap, not stack, and wiped after use since
 * it holds intermediate state derived from the password. */
static struct crypt_data *crypt_data_new(void)
{
    return calloc(1, sizeof(struct crypt_data));
}

static void crypt_data_free(struct crypt_data *data)
{
    explicit_bzero(data, sizeof *data);
    free(data);
}

int hash_password(const char *password, char *out, size_t outlen)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt))
        return -1;
    struct crypt_data *data = crypt_data_new();
    if (!data)
        return -1;
    int rc = -1;
    const char *h = crypt_rn(password, salt, data, sizeof *data);
    if (!h) {
        /* errno from crypt_rn */
    } else if (strlen(h) >= outlen) {
        errno = ERANGE;
    } else {
        memcpy(out, h, strlen(h) + 1);
        rc = 0;
    }
    crypt_data_free(data);
    return rc;
}

/* Compares all of both strings whatever they contain, so the time taken
 * tells nothing about where they first differ. */
static bool equal_const_time(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t n = la > lb ? la : lb;
    unsigned char diff = la != lb;
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = i < la ? (unsigned char)a[i] : 0;
        unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
        diff |= ca ^ cb;
    }
    return diff == 0;
}

bool verify_password(const char *password, const char *hash)
{
    /* "*" and "!" prefixes are how locked or disabled hashes are written;
     * crypt_rn would reject them too, this just says so plainly. */
    if (!password || !hash || !hash[0] || hash[0] == '*' || hash[0] == '!')
        return false;
    struct crypt_data *data = crypt_data_new();
    if (!data)
        return false;
    const char *h = crypt_rn(password, hash, data, sizeof *data);
    bool ok = h && equal_const_time(h, hash);
    crypt_data_free(data);
    return ok;
}
