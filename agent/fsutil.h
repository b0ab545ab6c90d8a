/* fsutil.h -- small file-system helpers the agent's modules share. */
#ifndef AF_AGENT_FSUTIL_H
#define AF_AGENT_FSUTIL_H

#include <sys/types.h>

#include "error.h"

/* mkdir -p DIR: missing parents are created with PARENT_MODE, DIR itself
 * with MODE; existing ones are left as they are. 0, or AF_ERR_TOOBIG (path
 * longer than AF_CONTEXT_MAX_PATH) / AF_ERR_IO naming the path, also when
 * DIR exists but is not a directory. */
int af_mkdirs(const char *dir, mode_t parent_mode, mode_t mode, af_err_t *err)
    __attribute__((warn_unused_result));

#endif
