/* fault_injection.c -- test-only misbehaviour (see fault_injection.h).
 * Nothing here runs unless an ARCHFARM_AGENT_TEST_* variable is set. */
#include "fault_injection.h"

#include <stdlib.h>

#include "log.h"

void af_fault_wrong_platform(af_platform_t *platform)
{
    const char *v = getenv("ARCHFARM_AGENT_TEST_WRONG_PLATFORM");
    if (!v || !*v)
        return;
    af_platform_t wrong;
    if (af_platform_parse(v, &wrong, NULL) < 0) {
        af_warn("ARCHFARM_AGENT_TEST_WRONG_PLATFORM=%s is not a platform: ignored", v);
        return;
    }
    char want[AF_PLATFORM_STR_MAX];
    af_warn("TEST FAULT INJECTION: labelling a %s image as %s "
            "(ARCHFARM_AGENT_TEST_WRONG_PLATFORM)",
            af_platform_format(platform, want, sizeof want), v);
    *platform = wrong;
}
