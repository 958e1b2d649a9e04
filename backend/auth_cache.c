#include "auth_cache.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
    unsigned char key[32];
    double expires;          /* monotonic seconds; 0: empty */
};

static struct entry *table;
static int nentries;
static double ttl;

void auth_cache_init(int entries, double ttl_seconds)
{
    free(table);
    table = NULL;
    nentries = entries > 0 && ttl_seconds > 0 ? entries : 0;
    ttl = ttl_seconds;
    if (nentries)
        table = calloc((size_t)nentries, sizeof *table);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void make_key(const char *address, const char *password, const char *hash,
                     unsigned char key[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    /* NUL separators keep ("ab", "c") and ("a", "bc") apart. */
    EVP_DigestUpdate(md, address, strlen(address) + 1);
    EVP_DigestUpdate(md, password, strlen(password) + 1);
    EVP_DigestUpdate(md, hash, strlen(hash) + 1);
    EVP_DigestFinal_ex(md, key, NULL);
    EVP_MD_CTX_free(md);
}

static struct entry *slot(const unsigned char key[32])
{
    uint32_t h;
    memcpy(&h, key, sizeof h);
    return &table[h % (uint32_t)nentries];
}

bool auth_cache_hit(const char *address, const char *password, const char *stored_hash)
{
    if (!nentries)
        return false;
    unsigned char key[32];
    make_key(address, password, stored_hash, key);
    struct entry *e = slot(key);
    return e->expires > now() && CRYPTO_memcmp(e->key, key, sizeof key) == 0;
}

void auth_cache_add(const char *address, const char *password, const char *stored_hash)
{
    if (!nentries)
        return;
    unsigned char key[32];
    make_key(address, password, stored_hash, key);
    struct entry *e = slot(key);
    memcpy(e->key, key, sizeof key);
    e->expires = now() + ttl;
}
