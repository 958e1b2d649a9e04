/* Password hashing with crypt(3), shared by petrel-admin (setting) and the
 * backend (login). */
#ifndef PETREL_PASSWORD_H
#define PETREL_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* Room for any hash crypt(3) produces (CRYPT_OUTPUT_SIZE). */
#define PASSWORD_HASH_MAX 384

/* Hashes password with yescrypt at libcrypt's default cost and a fresh
 * random salt into out (outlen >= PASSWORD_HASH_MAX is always enough).
 * Returns 0, or -1 with errno set (EINVAL, ERANGE, or from the random
 * source). */
int hash_password(const char *password, char *out, size_t outlen);

/* True if password matches hash, in any scheme libcrypt supports
 * (yescrypt $y$, SHA512-CRYPT $6$, SHA256-CRYPT $5$, bcrypt $2b$, ...).
 * The final comparison takes the same time wherever the hashes differ.
 * An unparsable or disabled hash never matches. */
bool verify_password(const char *password, const char *hash);

/* A valid yescrypt hash of no one's password, at the default cost: verify
 * against it when the account does not exist so that the answer takes as
 * long as for a real account. */
const char *password_dummy_hash(void);

#endif
