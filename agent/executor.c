/* executor.c -- the table of executors compiled into the agent. */
#include "executor.h"

#include <string.h>

bool af_executor_supports(const af_executor_t *self, const char *kind)
{
    for (size_t i = 0; self && kind && self->kinds[i]; i++)
        if (!strcmp(self->kinds[i], kind))
            return true;
    return false;
}

const af_executor_t *const *af_executor_all(void)
{
    static const af_executor_t *const all[] = {&af_executor_native, &af_executor_buildah,
                                               &af_executor_buildctl, &af_executor_docker, NULL};
    return all;
}
