/* fuzz_oci.c -- libFuzzer target for the parsers of registry replies:
 * af_oci_doc_parse (manifests, indexes) with and without a Content-Type,
 * af_oci_index_select over what parsed, and af_oci_config_platform. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    af_err_t err;
    static const char *const content_types[] = {NULL, AF_MT_DOCKER_MANIFEST, AF_MT_OCI_INDEX};
    for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++) {
        af_oci_doc_t *doc = af_oci_doc_parse(body, size, content_types[i], &err);
        if (doc) {
            af_platform_t p;
            if (af_platform_host(&p) == 0)
                (void)af_oci_index_select(doc, &p);
            if (af_platform_parse("linux/arm/v7", &p, NULL) == 0)
                (void)af_oci_index_select(doc, &p);
            af_oci_doc_destroy(&doc);
        }
    }
    af_platform_t p;
    (void)af_oci_config_platform(body, size, &p, &err);
    return 0;
}
