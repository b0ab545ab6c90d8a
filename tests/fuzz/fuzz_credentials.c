/* fuzz_credentials.c -- libFuzzer target for the auth-file decoding
 * (af_credentials_lookup_buffer: JSON, "auths" keys as hosts or URLs,
 * base64 "auth" or username/password).
 *
 * Whatever the bytes: no crash, leak or hang; either both user and
 * password come back (user non-empty) or neither, and an error names the
 * file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const hosts[] = {"docker.io", "127.0.0.1:5000", "reg.example"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        char *user = (char *)1, *pass = (char *)1;
        af_err_t err;
        af_err_clear(&err);
        int rc = af_credentials_lookup_buffer("fuzz.json", (const char *)data, size, hosts[i],
                                              &user, &pass, &err);
        if (rc) {
            if (user || pass || rc >= 0 || strncmp(err.msg, "fuzz.json", 9))
                abort();
            continue;
        }
        if (!user != !pass || (user && !*user))
            abort();
        free(user);
        free(pass);
    }
    return 0;
}
