/* agg_tracker.c - the aggregate kept up to date one result at a time.
 *
 * ha_aggregate folds every check's state on every batch: O(checks) per result once results
 * arrive spread over the interval, which at a thousand checks was the top cost of the loop.
 * Here each check sits in one class (passing, passing but degraded, critical failing/starting,
 * other failing/starting); a result moves at most one check between classes, and the verdict
 * follows from the class counts alone. The summary text names non-passing and degraded checks with
 * their reasons, so it is marked dirty when such a check got a result or a check changed class, and
 * is then rebuilt from a bitmap of those checks. The trade-off: a byte and a bit per check of
 * memory, and the caller must report every result (ha_agg_tracker_update) - a missed one
 * leaves the verdict wrong until that check's next result. */
#include "healthagg/aggregate.h"

#include <stdlib.h>
#include <string.h>

ha_agg_class ha_agg_classify(const ha_check_config *c, const ha_check_state *s)
{
    switch (s->status) {
    case HA_CHECK_PASS:
        return ha_agg_degraded(s) ? HA_AGG_CLASS_DEGRADED : HA_AGG_CLASS_PASS;
    case HA_CHECK_FAIL:
        return c->critical ? HA_AGG_CLASS_CRITICAL_FAIL : HA_AGG_CLASS_OTHER_FAIL;
    case HA_CHECK_STARTING:
        break;
    }
    return c->critical ? HA_AGG_CLASS_CRITICAL_STARTING : HA_AGG_CLASS_OTHER_STARTING;
}

static void set_notable(ha_agg_tracker *t, size_t i, bool on)
{
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (on)
        t->notable[i / 64] |= bit;
    else
        t->notable[i / 64] &= ~bit;
}

int ha_agg_tracker_init(ha_agg_tracker *t, const ha_check_config *cfg, const ha_check_state *st,
                        size_t n)
{
    memset(t, 0, sizeof(*t));
    t->n = n;
    t->cls = calloc(n ? n : 1, 1);
    t->notable = calloc(n / 64 + 1, sizeof(*t->notable));
    if (!t->cls || !t->notable) {
        ha_agg_tracker_free(t);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        ha_agg_class k = ha_agg_classify(&cfg[i], &st[i]);
        t->cls[i] = (unsigned char)k;
        t->count[k]++;
        set_notable(t, i, k != HA_AGG_CLASS_PASS);
    }
    t->summary_dirty = true;
    return 0;
}

void ha_agg_tracker_free(ha_agg_tracker *t)
{
    free(t->cls);
    free(t->notable);
    t->cls = NULL;
    t->notable = NULL;
    t->n = 0;
}

void ha_agg_tracker_update(ha_agg_tracker *t, size_t i, const ha_check_config *c,
                           const ha_check_state *s)
{
    ha_agg_class was = (ha_agg_class)t->cls[i], now = ha_agg_classify(c, s);
    if (now != was) {
        t->count[was]--;
        t->count[now]++;
        t->cls[i] = (unsigned char)now;
        set_notable(t, i, now != HA_AGG_CLASS_PASS);
        t->summary_dirty = true;
    } else if (now != HA_AGG_CLASS_PASS) {
        t->summary_dirty = true; /* its reason is in the summary and may have changed */
    }
}

ha_agg_status ha_agg_tracker_status(const ha_agg_tracker *t, bool draining)
{
    if (draining)
        return HA_AGG_DRAINING;
    if (t->count[HA_AGG_CLASS_CRITICAL_FAIL])
        return HA_AGG_FAIL;
    if (t->count[HA_AGG_CLASS_CRITICAL_STARTING])
        return HA_AGG_STARTING;
    return t->count[HA_AGG_CLASS_OTHER_FAIL] || t->count[HA_AGG_CLASS_DEGRADED] ? HA_AGG_WARN
                                                                                : HA_AGG_PASS;
}

void ha_agg_tracker_summary(ha_agg_tracker *t, ha_agg_status agg, const ha_check_config *cfg,
                            const ha_check_state *st, char *buf, size_t len)
{
    ha_aggregate_summary_of(agg, cfg, st, t->n, t->notable, buf, len);
    t->summary_dirty = false;
}
