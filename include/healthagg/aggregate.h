/* aggregate.h - many check states in, one verdict out.
 *
 * draining > fail (a critical check failing) > starting (a critical check not yet decided)
 * > warn (only non-critical checks failing) > pass. Ready means pass or warn. */
#ifndef HEALTHAGG_AGGREGATE_H
#define HEALTHAGG_AGGREGATE_H

#include "healthagg/state.h"

#define HA_SUMMARY_MAX 512

typedef enum {
    HA_AGG_STARTING,
    HA_AGG_PASS,
    HA_AGG_WARN,
    HA_AGG_FAIL,
    HA_AGG_DRAINING
} ha_agg_status;

const char *ha_agg_status_name(ha_agg_status s);
bool ha_agg_ready(ha_agg_status s);
/* The verdict `probe` gets (/readyz answers 200): ready, or, in report-only mode (top-level
 * "enforce": false), anything but draining. */
bool ha_agg_probe_ok(ha_agg_status s, bool enforce);
/* /readyz's body line: the summary, or "ok (report-only: would fail: <summary>)". */
void ha_agg_probe_line(ha_agg_status s, bool enforce, const char *summary, char *buf, size_t len);
ha_agg_status ha_aggregate(const ha_check_config *cfg, const ha_check_state *st, size_t n,
                           bool draining);
/* The one-line reason: "ok", "ok (warn: db: ...)", "app: HTTP 503", "starting: app: ...",
 * "draining". It is /readyz's body and what `probe` prints after "unhealthy: ". */
void ha_aggregate_summary(ha_agg_status agg, const ha_check_config *cfg, const ha_check_state *st,
                          size_t n, char *buf, size_t len);

#endif
