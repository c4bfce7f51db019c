/* state.c - the per-check threshold state machine (see state.h for the rules). */
#include "healthagg/state.h"

#include "healthagg/quote.h"

#include <stdio.h>
#include <string.h>

const char *ha_check_status_name(ha_check_status s)
{
    switch (s) {
    case HA_CHECK_STARTING:
        return "starting";
    case HA_CHECK_PASS:
        return "pass";
    case HA_CHECK_FAIL:
        return "fail";
    }
    return "unknown";
}

void ha_state_init(ha_check_state *s, uint64_t now_mono_ms)
{
    memset(s, 0, sizeof(*s));
    s->status = HA_CHECK_STARTING;
    s->started_mono_ms = now_mono_ms;
}

bool ha_state_apply(ha_check_state *s, const ha_check_config *c, const ha_result *r,
                    uint64_t now_mono_ms, uint64_t now_wall_ms)
{
    ha_check_status before = s->status;
    if (r->inconclusive) {
        /* Our own resource trouble must never turn the task unhealthy. */
        s->inconclusive_total++;
        return false;
    }
    s->probes_total++;
    s->has_result = true;
    s->last = *r;
    s->last_wall_ms = now_wall_ms;
    if (r->cert_not_after)
        s->cert_not_after = r->cert_not_after;

    if (r->ok) {
        s->last_success_wall_ms = now_wall_ms;
        s->consecutive_failures = 0;
        if (s->consecutive_successes < UINT32_MAX)
            s->consecutive_successes++;
        /* Starting: one success is enough, as in Docker's start period. */
        if (s->status == HA_CHECK_STARTING ||
            (s->status == HA_CHECK_FAIL && s->consecutive_successes >= c->success_threshold))
            s->status = HA_CHECK_PASS;
    } else {
        s->failures_total++;
        memcpy(s->last_failure, r->reason, sizeof(s->last_failure));
        s->consecutive_successes = 0;
        bool in_start_period =
            s->status == HA_CHECK_STARTING && now_mono_ms - s->started_mono_ms < c->start_period_ms;
        if (!in_start_period) {
            if (s->consecutive_failures < UINT32_MAX)
                s->consecutive_failures++;
            if (s->status != HA_CHECK_FAIL && s->consecutive_failures >= c->failure_threshold)
                s->status = HA_CHECK_FAIL;
        }
    }
    if (s->status != before) {
        s->transitions++;
        return true;
    }
    return false;
}

void ha_state_reason(const ha_check_state *s, const ha_check_config *c, char *buf, size_t len)
{
    if (len == 0)
        return;
    if (!s->has_result)
        snprintf(buf, len, "no result yet");
    else if (s->status == HA_CHECK_FAIL && s->consecutive_successes > 0)
        snprintf(buf, len, "recovering: %u/%u successes (last failure: %s)",
                 s->consecutive_successes, c->success_threshold,
                 s->last_failure[0] ? s->last_failure : "unknown");
    else
        snprintf(buf, len, "%s", s->last.reason);
    ha_utf8_trim_partial(buf);
}
