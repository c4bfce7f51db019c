/* commands.h - the subcommands main.c dispatches to. Each returns the process exit code. */
#ifndef HEALTHAGG_COMMANDS_H
#define HEALTHAGG_COMMANDS_H

#include "healthagg/config.h"

#include <stdio.h>

/* serve.c: the daemon. 0 after SIGTERM/SIGINT, 2 on bad config or a port that can't be bound. */
int ha_cmd_serve(const ha_config_inputs *in);
/* Where probe also writes its verdict, as a JSON log line: the container's log stream
 * (/proc/1/fd/1), never, on failures (the default), or always. */
typedef enum { HA_MIRROR_NEVER, HA_MIRROR_FAILURES, HA_MIRROR_ALWAYS } ha_mirror_mode;
/* "never" | "failures" | "always"; returns 0 or -1. */
int ha_mirror_parse(const char *s, ha_mirror_mode *out);
/* probe.c: ask the running sidecar's /readyz. 0 iff it answered 200, else 1 (never 2). */
int ha_cmd_probe(const char *url, uint64_t timeout_ms, ha_mirror_mode mirror, FILE *out);
/* oneshot.c: probe targets once, no daemon. 0 iff all pass, else 1. `defaults` (may be NULL)
 * is read like a config's "defaults" object: how the TLS flags reach https:// checks. */
struct cJSON;
/* oneshot.c: every check of a loaded config once, each with its own keys and timeout. */
int ha_cmd_check_config(const ha_config *cfg, FILE *out);
int ha_cmd_check(const char *const *urls, size_t n, uint64_t timeout_ms,
                 const struct cJSON *defaults, FILE *out);

#endif
