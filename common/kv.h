/* kv.h -- a key/value pair, shared by proto, oci and recipe. Owners free
 * both strings. */
#ifndef AF_KV_H
#define AF_KV_H

typedef struct {
    char *key;
    char *value;
} af_kv_t;

#endif
