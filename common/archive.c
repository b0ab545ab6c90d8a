/* archive.c -- deterministic tar writing and safe tar extraction (skeleton). */
#include "archive.h"

int af_archive_pack_context(const char *dir, const char *out_path, int64_t mtime,
                            af_pack_result_t *result, af_err_t *err)
{
    return af_err_set(err, AF_ERR_UNSUPPORTED, "%s: not implemented yet", dir);
}

int af_archive_write_layer(const char *root, const af_layer_entry_t *entries, size_t n,
                           const char *out_path, int64_t mtime, af_layer_result_t *result,
                           af_err_t *err)
{
    return af_err_set(err, AF_ERR_UNSUPPORTED, "%s: not implemented yet", out_path);
}

int af_archive_extract(const char *tar_path, const char *dest_dir,
                       const af_extract_limits_t *limits, af_err_t *err)
{
    return af_err_set(err, AF_ERR_UNSUPPORTED, "%s: not implemented yet", tar_path);
}

int af_remove_tree(const char *path, af_err_t *err)
{
    return af_err_set(err, AF_ERR_UNSUPPORTED, "%s: not implemented yet", path);
}
