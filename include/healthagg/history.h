/* history.h - the flight recorder: the last N probe results of every check.
 *
 * One ring per check, all allocated in one block when serve starts (n_checks x history_size
 * entries) and never resized: recording a result is a copy into a slot, no allocation, so the
 * recorder costs the same on the millionth probe as on the first. What it holds is served at
 * /health?history=1 and logged as one `history` line per check when the check turns to fail and
 * on SIGTERM, so the evidence is in the container log after ECS has replaced the task. */
#ifndef HEALTHAGG_HISTORY_H
#define HEALTHAGG_HISTORY_H

#include "healthagg/config.h"
#include "healthagg/state.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { HA_HIST_PASS, HA_HIST_FAIL, HA_HIST_ERROR } ha_hist_result;

typedef struct ha_history_entry {
    uint64_t wall_ms;
    uint64_t latency_us;
    uint8_t result; /* ha_hist_result: the probe's own verdict */
    uint8_t state;  /* ha_check_status of the check after this result */
    char reason[HA_REASON_MAX];
} ha_history_entry;

typedef struct ha_history_ring {
    uint32_t next;  /* slot the next result goes to */
    uint32_t count; /* results held, at most size */
} ha_history_ring;

typedef struct ha_history {
    ha_history_entry *entries; /* n_checks * size, owned */
    ha_history_ring *rings;    /* n_checks, owned */
    size_t n_checks;
    unsigned size; /* 0: the recorder is off */
} ha_history;

/* Allocates every ring at once; returns 0 or -1 (out of memory). size 0 allocates nothing. */
int ha_history_init(ha_history *h, size_t n_checks, unsigned size);
void ha_history_free(ha_history *h);
void ha_history_record(ha_history *h, size_t check, uint64_t wall_ms, const ha_result *r,
                       ha_check_status state_after);
/* The check's results, oldest first, as a JSON array of {time, result, state, latency_ms,
 * reason}; NULL when out of memory. */
cJSON *ha_history_json(const ha_history *h, size_t check);
/* One `history` log line for the check; `why` says what triggered it ("fail", "SIGTERM"). */
void ha_history_log(const ha_history *h, const ha_check_config *c, size_t check, const char *why,
                    bool enforced);

#endif
