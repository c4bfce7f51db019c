/* commands.h - the subcommands main.c dispatches to. Each returns the process exit code. */
#ifndef HEALTHAGG_COMMANDS_H
#define HEALTHAGG_COMMANDS_H

#include "healthagg/config.h"

#include <stdio.h>

/* serve.c: the daemon. 0 after SIGTERM/SIGINT, 2 on bad config or a port that can't be bound. */
int ha_cmd_serve(const ha_config_inputs *in);
/* probe.c: ask the running sidecar's /readyz. 0 iff it answered 200, else 1 (never 2). */
int ha_cmd_probe(const char *url, uint64_t timeout_ms, FILE *out);
/* oneshot.c: probe targets once, no daemon. 0 iff all pass, else 1. */
int ha_cmd_check(const char *const *urls, size_t n, uint64_t timeout_ms, FILE *out);

#endif
