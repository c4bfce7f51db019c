/* aggregate.h - many check states in, one verdict out.
 *
 * draining > fail (a critical check failing) > starting (a critical check not yet decided)
 * > warn (only non-critical checks failing) > pass. Ready means pass or warn. */
#ifndef HEALTHAGG_AGGREGATE_H
#define HEALTHAGG_AGGREGATE_H

#include "healthagg/state.h"

#include <stddef.h>
#include <stdint.h>

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
/* A passing check whose last probe was degraded (warn_latency, a certificate about to expire):
 * the aggregate warns and the summary names it. */
bool ha_agg_degraded(const ha_check_state *s);
ha_agg_status ha_aggregate(const ha_check_config *cfg, const ha_check_state *st, size_t n,
                           bool draining);
/* The same over a subset: the n checks whose indices are in idx (a group's members). */
ha_agg_status ha_aggregate_subset(const ha_check_config *cfg, const ha_check_state *st,
                                  const size_t *idx, size_t n, bool draining);
/* The one-line reason: "ok", "ok (warn: db: ...)", "app: HTTP 503", "starting: app: ...",
 * "draining". It is /readyz's body and what `probe` prints after "unhealthy: ". */
void ha_aggregate_summary(ha_agg_status agg, const ha_check_config *cfg, const ha_check_state *st,
                          size_t n, char *buf, size_t len);
/* The same, looking only at the checks whose bit is set in `only` (NULL: all): every check the
 * summary can name must be in it. */
void ha_aggregate_summary_of(ha_agg_status agg, const ha_check_config *cfg,
                             const ha_check_state *st, size_t n, const uint64_t *only, char *buf,
                             size_t len);

/* One group's verdict (config "groups"), kept like the task's. */
typedef struct ha_group_state {
    ha_agg_status agg;
    char summary[HA_SUMMARY_MAX];
} ha_group_state;

/* The same verdict and summary kept incrementally (agg_tracker.c): each result moves its check
 * between a few classes and counters, so a batch of results costs O(results), not O(checks).
 * The summary names only checks that are not passing; it is rebuilt only when such a check got
 * a result (its reason may have changed) or a check changed class, and then walks a bitmap of
 * the non-passing checks instead of every check. Equal to ha_aggregate and
 * ha_aggregate_summary at every step (tests/unit/test_aggregate.c checks random sequences). */
typedef enum {
    HA_AGG_CLASS_PASS,
    HA_AGG_CLASS_DEGRADED, /* passing, but its last probe was degraded: warn */
    HA_AGG_CLASS_CRITICAL_FAIL,
    HA_AGG_CLASS_CRITICAL_STARTING,
    HA_AGG_CLASS_OTHER_FAIL,
    HA_AGG_CLASS_OTHER_STARTING,
    HA_AGG_CLASSES
} ha_agg_class;

typedef struct ha_agg_tracker {
    size_t n;
    size_t count[HA_AGG_CLASSES];
    unsigned char *cls; /* per check, an ha_agg_class */
    uint64_t *notable;  /* bit i: check i can appear in the summary (not passing) */
    bool summary_dirty; /* the summary may differ from the last one built */
} ha_agg_tracker;

ha_agg_class ha_agg_classify(const ha_check_config *c, const ha_check_state *s);
/* Classifies every check; 0 or -1 when out of memory. */
int ha_agg_tracker_init(ha_agg_tracker *t, const ha_check_config *cfg, const ha_check_state *st,
                        size_t n);
void ha_agg_tracker_free(ha_agg_tracker *t);
/* After check i got a result (whether or not its status changed). */
void ha_agg_tracker_update(ha_agg_tracker *t, size_t i, const ha_check_config *c,
                           const ha_check_state *s);
ha_agg_status ha_agg_tracker_status(const ha_agg_tracker *t, bool draining);
/* ha_aggregate_summary over the non-passing checks only; clears summary_dirty. */
void ha_agg_tracker_summary(ha_agg_tracker *t, ha_agg_status agg, const ha_check_config *cfg,
                            const ha_check_state *st, char *buf, size_t len);

#endif
