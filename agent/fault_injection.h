/* fault_injection.h -- knobs that make an agent misbehave on purpose, for
 * the fault-tolerance integration tests ONLY (tests/integration/
 * test_fault_*.sh). Each reads one environment variable named
 * ARCHFARM_AGENT_TEST_*; unset (always, in production) they do nothing.
 * They live here, in one place, so that nothing else in the agent ever
 * needs a test-only branch. */
#ifndef AF_AGENT_FAULT_INJECTION_H
#define AF_AGENT_FAULT_INJECTION_H

#include "platform.h"

/* ARCHFARM_AGENT_TEST_WRONG_PLATFORM=os/arch[/variant]: the native
 * assembler labels the image config with that platform instead of the
 * slice's, as a node whose engine built the wrong architecture would.
 * Exists only so the coordinator's verification (config platform ==
 * slice platform, before any tag moves) can be tested end to end.
 * Replaces *PLATFORM when set and valid (and logs a loud warning). */
void af_fault_wrong_platform(af_platform_t *platform);

#endif
