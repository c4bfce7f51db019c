/* state.h - one check's verdict over time: the threshold state machine.
 *
 * Pure logic, no I/O: fed one probe result at a time with the current time, it decides
 * whether the check is starting, passing or failing. Mirrors Docker/ECS semantics so the
 * numbers people already know carry over: failures inside the start period do not count,
 * the first success ends the start period, `failure_threshold` consecutive failures turn a
 * check down, `success_threshold` consecutive successes bring it back. */
#ifndef HEALTHAGG_STATE_H
#define HEALTHAGG_STATE_H

#include "healthagg/config.h"

#include <stdbool.h>
#include <stdint.h>

#define HA_REASON_MAX 192

typedef enum { HA_CHECK_STARTING, HA_CHECK_PASS, HA_CHECK_FAIL } ha_check_status;

/* One probe attempt's outcome. */
typedef struct ha_result {
    bool ok;
    bool degraded; /* passed, but slower than warn_latency (or a certificate expires soon) */
    uint64_t latency_us;
    int http_status; /* 0 when no status line was read */
    /* The attempt failed on our side (out of file descriptors or memory): it says nothing
     * about the target, so it neither counts as a failure nor as a success. */
    bool inconclusive;
    int64_t cert_not_after; /* TLS: the peer certificate's notAfter (Unix seconds); 0 = none */
    char reason[HA_REASON_MAX];
} ha_result;

typedef struct ha_check_state {
    ha_check_status status;
    unsigned consecutive_failures; /* only failures that count (outside the start period) */
    unsigned consecutive_successes;
    uint64_t transitions;
    uint64_t probes_total;
    uint64_t failures_total;
    uint64_t inconclusive_total;
    bool has_result;
    ha_result last;
    char last_failure[HA_REASON_MAX]; /* reason of the last failed probe ("" = none yet) */
    uint64_t last_wall_ms;            /* when `last` was observed */
    uint64_t last_success_wall_ms;    /* 0 = never */
    uint64_t started_mono_ms;         /* start of the start period */
    int64_t cert_not_after;           /* TLS: last known peer certificate notAfter; 0 = none */
} ha_check_state;

const char *ha_check_status_name(ha_check_status s);
void ha_state_init(ha_check_state *s, uint64_t now_mono_ms);
/* Applies one result; returns true when `status` changed. */
bool ha_state_apply(ha_check_state *s, const ha_check_config *c, const ha_result *r,
                    uint64_t now_mono_ms, uint64_t now_wall_ms);
/* The reason to show for the check's current state: the last probe's reason, "no result yet",
 * or, for a failing check that has started passing again but not yet `success_threshold`
 * times, "recovering: 1/3 successes (last failure: HTTP 503)" - its last probe passed, but the
 * check still fails, and "HTTP 200" alone would not say why. Cut on a character boundary. */
void ha_state_reason(const ha_check_state *s, const ha_check_config *c, char *buf, size_t len);

#endif
