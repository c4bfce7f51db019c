/* histogram.h - a fixed-bucket latency histogram in microseconds, Prometheus-shaped.
 *
 * Fixed buckets make an observation a short linear scan and no allocation; the scheduler
 * observes its lag (how late each probe starts) and /metrics exports it, from which p50/p99
 * follow. Bucket bounds match what matters for a scheduler: sub-millisecond to a second. */
#ifndef HEALTHAGG_HISTOGRAM_H
#define HEALTHAGG_HISTOGRAM_H

#include <stdint.h>

#define HA_HIST_BUCKETS 11 /* plus +Inf */

static const uint64_t ha_hist_bounds_us[HA_HIST_BUCKETS] = {
    500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};

typedef struct ha_histogram {
    uint64_t buckets[HA_HIST_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    uint64_t sum_us;
    uint64_t count;
    uint64_t max_us;
} ha_histogram;

static inline void ha_histogram_observe(ha_histogram *h, uint64_t us)
{
    unsigned i = 0;
    while (i < HA_HIST_BUCKETS && us > ha_hist_bounds_us[i])
        i++;
    h->buckets[i]++;
    h->sum_us += us;
    h->count++;
    if (us > h->max_us)
        h->max_us = us;
}

#endif
