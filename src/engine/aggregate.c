/* aggregate.c - folds per-check states into the task's verdict and its one-line reason. */
#include "healthagg/aggregate.h"

#include "healthagg/quote.h"

#include <stdio.h>
#include <string.h>

const char *ha_agg_status_name(ha_agg_status s)
{
    switch (s) {
    case HA_AGG_STARTING:
        return "starting";
    case HA_AGG_PASS:
        return "pass";
    case HA_AGG_WARN:
        return "warn";
    case HA_AGG_FAIL:
        return "fail";
    case HA_AGG_DRAINING:
        return "draining";
    }
    return "unknown";
}

bool ha_agg_ready(ha_agg_status s)
{
    return s == HA_AGG_PASS || s == HA_AGG_WARN;
}

bool ha_agg_probe_ok(ha_agg_status s, bool enforce)
{
    return ha_agg_ready(s) || (!enforce && s != HA_AGG_DRAINING);
}

void ha_agg_probe_line(ha_agg_status s, bool enforce, const char *summary, char *buf, size_t len)
{
    if (!ha_agg_ready(s) && ha_agg_probe_ok(s, enforce))
        snprintf(buf, len, "ok (report-only: would fail: %s)", summary);
    else
        snprintf(buf, len, "%s", summary);
}

bool ha_agg_degraded(const ha_check_state *s)
{
    return s->status == HA_CHECK_PASS && s->has_result && s->last.ok && s->last.degraded;
}

ha_agg_status ha_aggregate(const ha_check_config *cfg, const ha_check_state *st, size_t n,
                           bool draining)
{
    return ha_aggregate_subset(cfg, st, NULL, n, draining);
}

ha_agg_status ha_aggregate_subset(const ha_check_config *cfg, const ha_check_state *st,
                                  const size_t *idx, size_t n, bool draining)
{
    if (draining)
        return HA_AGG_DRAINING;
    bool any_critical_fail = false, any_critical_starting = false, any_other_fail = false;
    for (size_t j = 0; j < n; j++) {
        size_t i = idx ? idx[j] : j;
        any_other_fail |= ha_agg_degraded(&st[i]);
        if (cfg[i].critical) {
            any_critical_fail |= st[i].status == HA_CHECK_FAIL;
            any_critical_starting |= st[i].status == HA_CHECK_STARTING;
        } else {
            any_other_fail |= st[i].status == HA_CHECK_FAIL;
        }
    }
    if (any_critical_fail)
        return HA_AGG_FAIL;
    if (any_critical_starting)
        return HA_AGG_STARTING;
    return any_other_fail ? HA_AGG_WARN : HA_AGG_PASS;
}

/* The first check at or after i that is in `only` (a bitmap; NULL: every check), or n. */
static size_t next_check(const uint64_t *only, size_t n, size_t i)
{
    if (!only)
        return i;
    while (i < n) {
        uint64_t bits = only[i / 64] >> (i % 64);
        if (bits)
            return i + (size_t)__builtin_ctzll(bits);
        i = (i / 64 + 1) * 64;
    }
    return n;
}

/* Appends "name: reason" for every check matching (critical, status), or with status PASS for
 * every degraded passing check, "; "-separated after `off` (a "; " first when `more`).
 * Keeps going until the buffer is full, then marks the cut with "...". */
static size_t append_checks_ex(char *buf, size_t len, size_t off, const ha_check_config *cfg,
                               const ha_check_state *st, size_t n, const uint64_t *only,
                               bool critical, ha_check_status status, bool more)
{
    bool first = !more;
    for (size_t i = next_check(only, n, 0); i < n && off < len; i = next_check(only, n, i + 1)) {
        if (status == HA_CHECK_PASS ? !ha_agg_degraded(&st[i])
                                    : (cfg[i].critical != critical || st[i].status != status))
            continue;
        char reason[HA_REASON_MAX + 64];
        ha_state_reason(&st[i], &cfg[i], reason, sizeof(reason));
        int w = snprintf(buf + off, len - off, "%s%s: %s", first ? "" : "; ", cfg[i].name, reason);
        if (w < 0)
            break;
        if ((size_t)w >= len - off) {
            if (len >= 4) { /* cut on a character boundary, then mark the cut */
                buf[len - 4] = '\0';
                ha_utf8_trim_partial(buf);
                size_t end = strlen(buf);
                memcpy(buf + end, "...", 4);
                return end + 3;
            }
            return len - 1;
        }
        off += (size_t)w;
        first = false;
    }
    return off;
}

static size_t append_checks(char *buf, size_t len, size_t off, const ha_check_config *cfg,
                            const ha_check_state *st, size_t n, const uint64_t *only, bool critical,
                            ha_check_status status)
{
    return append_checks_ex(buf, len, off, cfg, st, n, only, critical, status, false);
}

void ha_aggregate_summary(ha_agg_status agg, const ha_check_config *cfg, const ha_check_state *st,
                          size_t n, char *buf, size_t len)
{
    ha_aggregate_summary_of(agg, cfg, st, n, NULL, buf, len);
}

void ha_aggregate_summary_of(ha_agg_status agg, const ha_check_config *cfg,
                             const ha_check_state *st, size_t n, const uint64_t *only, char *buf,
                             size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    size_t off = 0;
    switch (agg) {
    case HA_AGG_PASS:
        snprintf(buf, len, "ok");
        break;
    case HA_AGG_WARN:
        off = (size_t)snprintf(buf, len, "ok (warn: ");
        if (off < len) {
            size_t start = off;
            off = append_checks(buf, len, off, cfg, st, n, only, false, HA_CHECK_FAIL);
            off = append_checks_ex(buf, len, off, cfg, st, n, only, false, HA_CHECK_PASS,
                                   off != start);
            if (off + 1 < len) {
                buf[off++] = ')';
                buf[off] = '\0';
            }
        }
        break;
    case HA_AGG_FAIL:
        append_checks(buf, len, 0, cfg, st, n, only, true, HA_CHECK_FAIL);
        break;
    case HA_AGG_STARTING: {
        size_t start = (size_t)snprintf(buf, len, "starting: ");
        if (start >= len)
            break;
        off = append_checks(buf, len, start, cfg, st, n, only, true, HA_CHECK_STARTING);
        /* Before the first result every check is starting, critical or not: with only
         * non-critical checks, name those rather than leave the reason empty. */
        if (off == start)
            off = append_checks(buf, len, start, cfg, st, n, only, false, HA_CHECK_STARTING);
        if (off == start)
            snprintf(buf + start, len - start, "no result yet");
        break;
    }
    case HA_AGG_DRAINING:
        snprintf(buf, len, "draining");
        break;
    }
}
