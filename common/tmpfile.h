/* tmpfile.h -- an unnamed temporary file.
 *
 * A context tar, its delta, anything a crash must not leave behind:
 * O_TMPFILE where the file system has it, else a mkstemp file unlinked at
 * once, so that no exit, not even SIGKILL, leaves a copy on disk. */
#ifndef AF_COMMON_TMPFILE_H
#define AF_COMMON_TMPFILE_H

#include "error.h"

/* An unnamed file in DIR, open read-write, mode 0600, close-on-exec.
 * PREFIX names the brief mkstemp fallback (DIR/PREFIX-XXXXXX). The fd
 * (caller closes), or -1 with err (AF_ERR_IO naming DIR, AF_ERR_NOMEM). */
int af_tmpfile(const char *dir, const char *prefix, af_err_t *err);

#endif
