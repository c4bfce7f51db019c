/* scheduler.c - fires each check on its own timer, applies results to its state, and turns a
 * loop turn's worth of results into one aggregate update.
 *
 * Each check has its own uv_timer (libuv keeps them in a heap, so a thousand checks cost
 * O(log n) per fire). The next fire is planned from the previous *planned* time, not from
 * when the timer actually ran, so a slow loop turn does not push every later probe back;
 * a check that falls a whole interval behind skips ahead instead of firing in a burst.
 * Jitter of up to 5% of the interval (at most 1 s) keeps checks that share an interval from
 * probing in lockstep. Results arrive one at a time; each updates the aggregate's counters
 * (agg_tracker.c, O(1)), and the aggregate, its log line and /readyz are refreshed once per
 * loop turn by a uv_prepare handle, after all of that turn's I/O callbacks have run. */
#include "healthagg/context.h"
#include "healthagg/log.h"
#include "healthagg/timeutil.h"

#include <stdlib.h>
#include <string.h>

static uint64_t next_random(ha_context *ctx)
{
    /* xorshift64: jitter needs spread, not secrecy. */
    uint64_t x = ctx->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ctx->rng = x;
    return x;
}

static int64_t jitter_ms(ha_context *ctx, uint64_t interval_ms)
{
    uint64_t span = interval_ms / 20;
    if (span > 1000)
        span = 1000;
    if (span == 0)
        return 0;
    return (int64_t)(next_random(ctx) % (2 * span + 1)) - (int64_t)span;
}

static void log_transition(ha_context *ctx, size_t i, ha_check_status from)
{
    const ha_check_config *c = &ctx->config.checks[i];
    const ha_check_state *s = &ctx->states[i];
    bool bad = s->status == HA_CHECK_FAIL;
    cJSON *o = ha_log_begin(bad ? "warn" : "info", "transition");
    if (o) {
        cJSON_AddStringToObject(o, "check", c->name);
        cJSON_AddStringToObject(o, "url", c->url_text);
        cJSON_AddStringToObject(o, "from", ha_check_status_name(from));
        cJSON_AddStringToObject(o, "to", ha_check_status_name(s->status));
        cJSON_AddStringToObject(o, "reason", s->last.reason);
        cJSON_AddNumberToObject(o, "latency_ms", (double)s->last.latency_us / 1000.0);
        cJSON_AddNumberToObject(o, "consecutive_failures", s->consecutive_failures);
        cJSON_AddNumberToObject(o, "consecutive_successes", s->consecutive_successes);
        cJSON_AddBoolToObject(o, "critical", c->critical);
        cJSON_AddBoolToObject(o, "enforced", ctx->config.enforce);
    }
    ha_log_emit(o);
}

/* A passing check's probes turned slow (warn_latency) or its certificate near expiry, or back. */
static void log_degraded(ha_context *ctx, size_t i, bool degraded)
{
    const ha_check_config *c = &ctx->config.checks[i];
    const ha_check_state *s = &ctx->states[i];
    cJSON *o = ha_log_begin(degraded ? "warn" : "info", degraded ? "degraded" : "degraded_cleared");
    if (o) {
        cJSON_AddStringToObject(o, "check", c->name);
        cJSON_AddStringToObject(o, "state", degraded ? "warn" : "pass");
        cJSON_AddStringToObject(o, "reason", s->last.reason);
        cJSON_AddNumberToObject(o, "latency_ms", (double)s->last.latency_us / 1000.0);
        cJSON_AddBoolToObject(o, "critical", c->critical);
        cJSON_AddBoolToObject(o, "enforced", ctx->config.enforce);
    }
    ha_log_emit(o);
}

static void on_batch(uv_prepare_t *h)
{
    ha_context *ctx = h->data;
    uv_prepare_stop(h);
    ctx->batch_pending = false;
    ha_scheduler_refresh(ctx);
}

void ha_scheduler_refresh(ha_context *ctx)
{
    ha_agg_status before = ctx->agg;
    ha_agg_status now = ha_agg_tracker_status(&ctx->tracker, ctx->draining);
    bool changed = now != before;
    char summary[HA_SUMMARY_MAX];
    if (changed || ctx->tracker.summary_dirty) {
        /* Only when a non-passing check got a result or the set changed: a batch of passing
         * results costs nothing here (see agg_tracker.c). */
        ha_agg_tracker_summary(&ctx->tracker, now, ctx->config.checks, ctx->states, summary,
                               sizeof(summary));
        changed = changed || strcmp(summary, ctx->summary) != 0;
    }
    ctx->agg = now;
    if (changed)
        memcpy(ctx->summary, summary, sizeof(summary));
    if (now != before) {
        cJSON *o = ha_log_begin(ha_agg_ready(now) || now == HA_AGG_DRAINING ? "info" : "warn",
                                "aggregate");
        if (o) {
            cJSON_AddStringToObject(o, "from", ha_agg_status_name(before));
            cJSON_AddStringToObject(o, "to", ha_agg_status_name(now));
            cJSON_AddStringToObject(o, "reason", summary);
            cJSON_AddBoolToObject(o, "ready", ha_agg_ready(now));
            cJSON_AddBoolToObject(o, "enforced", ctx->config.enforce);
        }
        ha_log_emit(o);
    }
    ha_cache_results_changed(ctx, changed);
    ha_groups_refresh(ctx);
    ha_report_verdict(ctx);
}

static void schedule_batch(ha_context *ctx)
{
    if (ctx->batch_pending || ctx->stopping)
        return;
    if (uv_prepare_start(&ctx->batch, on_batch) == 0)
        ctx->batch_pending = true;
    else
        ha_scheduler_refresh(ctx); /* cannot defer: do it now */
}

static void on_probe_done(ha_probe *p, const ha_result *r)
{
    ha_check_runtime *rt = p->data;
    ha_context *ctx = rt->ctx;
    ha_check_state *s = &ctx->states[rt->index];
    ha_check_status from = s->status;
    if (rt->awaiting_fresh && p->start_ns / 1000000 >= ctx->stall_ms) {
        rt->awaiting_fresh = false;
        ctx->stall_pending--;
    }
    if (r->inconclusive != rt->last_inconclusive) {
        rt->last_inconclusive = r->inconclusive;
        cJSON *o = ha_log_begin(r->inconclusive ? "error" : "info",
                                r->inconclusive ? "probe_error" : "probe_error_cleared");
        if (o) {
            cJSON_AddStringToObject(o, "check", ctx->config.checks[rt->index].name);
            cJSON_AddStringToObject(o, "reason", r->reason);
            cJSON_AddStringToObject(o, "note",
                                    "a local resource problem; probes that hit it are not "
                                    "counted for or against the check");
        }
        ha_log_emit(o);
    }
    uint64_t wall = ha_wall_ms();
    ha_result enriched;
    if (ctx->metadata && !r->ok && ctx->config.checks[rt->index].container[0]) {
        enriched = *r;
        ha_enrich_result(ctx, rt->index, &enriched);
        r = &enriched;
    }
    bool was_degraded = ha_agg_degraded(s);
    bool changed = ha_state_apply(s, &ctx->config.checks[rt->index], r, uv_now(&ctx->loop), wall);
    bool degraded = ha_agg_degraded(s);
    /* Entering degraded, or leaving it while still passing (a failure has its own line). */
    if (degraded != was_degraded && (degraded || s->status == HA_CHECK_PASS))
        log_degraded(ctx, rt->index, degraded);
    ha_history_record(&ctx->history, rt->index, wall, r, s->status);
    ha_agg_tracker_update(&ctx->tracker, rt->index, &ctx->config.checks[rt->index], s);
    ctx->groups_dirty |= ctx->config.checks[rt->index].group_mask;
    if (changed) {
        log_transition(ctx, rt->index, from);
        ha_report_transition(ctx, rt->index, from);
    }
    schedule_batch(ctx);
}

/* The scheduler did not run for longer than the watchdog allows (the process was stopped, or
 * the loop was blocked). Timers run before I/O when the loop wakes, so this is noticed before
 * any request of that turn is answered: until every check has a result from a probe started
 * after now (and at least HA_STALL_HOLD_MS), /livez and /readyz say "stale" rather than serve
 * verdicts from before the gap. */
static void note_stall(ha_context *ctx, uint64_t now)
{
    cJSON *o = ha_log_begin("error", "stall");
    if (o) {
        cJSON_AddNumberToObject(o, "gap_ms", (double)(now - ctx->last_eval_ms));
        cJSON_AddNumberToObject(o, "stale_after_ms", (double)ctx->stale_after_ms);
        cJSON_AddStringToObject(o, "reason",
                                "no check ran for longer than 3x the largest "
                                "interval: healthagg was stopped or blocked; "
                                "answering stale until every check probed again");
    }
    ha_log_emit(o);
    ctx->stall_ms = now;
    ctx->stall_pending = ctx->config.n_checks;
    for (size_t i = 0; i < ctx->config.n_checks; i++)
        ctx->checks[i].awaiting_fresh = true;
}

static void on_check_timer(uv_timer_t *t)
{
    ha_check_runtime *rt = t->data;
    ha_context *ctx = rt->ctx;
    const ha_check_config *c = &ctx->config.checks[rt->index];
    uint64_t now = uv_now(&ctx->loop);
    /* Lag from the high-resolution clock: the loop's cached millisecond time would hide how
     * late a timer runs at the end of a long burst of callbacks. */
    uint64_t now_us = uv_hrtime() / 1000, planned_us = rt->planned_ms * 1000;
    ha_histogram_observe(&ctx->sched_lag, now_us > planned_us ? now_us - planned_us : 0);
    if (now - ctx->last_eval_ms > ctx->stale_after_ms)
        note_stall(ctx, now);
    ctx->last_eval_ms = now;
    if (ha_probe_start(&rt->probe) == UV_EBUSY)
        ctx->probes_skipped++;

    /* start_interval: the faster rate until the check's first success. A tick that finds the
     * previous probe still running is skipped (ha_probe_start), never doubled. */
    uint64_t interval = c->interval_ms;
    if (c->start_interval_ms && ctx->states[rt->index].last_success_wall_ms == 0)
        interval = c->start_interval_ms;
    uint64_t next;
    if (!rt->fired_once) {
        /* Every check probes at once on start (fast readiness); from the second probe on,
         * check i of n runs at phase i/n of its interval, so a thousand checks with the same
         * interval spread over it instead of arriving as one burst every interval. */
        size_t n = ctx->config.n_checks;
        uint64_t phase = interval * rt->index / n;
        next = rt->planned_ms + (phase ? phase : interval);
        rt->fired_once = true;
    } else {
        next = rt->planned_ms + interval;
        int64_t j = jitter_ms(ctx, interval);
        next = (j < 0 && (uint64_t)-j > next) ? next : (uint64_t)((int64_t)next + j);
    }
    if (next <= now) /* a whole interval behind: skip ahead rather than burst */
        next = now + interval;
    rt->planned_ms = next;
    uv_timer_start(t, on_check_timer, next - now, 0);
}

int ha_scheduler_start(ha_context *ctx)
{
    size_t n = ctx->config.n_checks;
    uint64_t now = uv_now(&ctx->loop);
    ctx->states = calloc(n, sizeof(*ctx->states));
    ctx->checks = calloc(n, sizeof(*ctx->checks));
    if (!ctx->states || !ctx->checks)
        return UV_ENOMEM;
    ctx->rng = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
    if (ctx->rng == 0)
        ctx->rng = 1;
    int rc = uv_prepare_init(&ctx->loop, &ctx->batch);
    if (rc != 0)
        return rc;
    ctx->batch.data = ctx;
    ctx->last_eval_ms = now;
    /* The resolver exists only when some check names a host: IP literals and localhost never
     * need one, and then no resolv.conf is read at all. */
    for (size_t i = 0; i < n && !ctx->resolver; i++) {
        const ha_check_config *c = &ctx->config.checks[i];
        ha_addr_list lit;
        if (c->row->transport && !ha_addr_literal(c->url.host, c->url.host_is_ipv6, 1, &lit)) {
            char err[128];
            if (!(ctx->resolver = ha_resolver_new(&ctx->loop, err, sizeof(err))))
                return UV_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        ha_check_runtime *rt = &ctx->checks[i];
        const ha_check_config *c = &ctx->config.checks[i];
        rt->ctx = ctx;
        rt->index = i;
        ha_state_init(&ctx->states[i], now);
        if ((rc = ha_probe_init(&rt->probe, &ctx->loop, ctx->resolver, c, on_probe_done, rt)) != 0)
            return rc;
        rt->probe_ready = true;
        if ((rc = uv_timer_init(&ctx->loop, &rt->timer)) != 0)
            return rc;
        rt->timer.data = rt;
    }
    if (ha_agg_tracker_init(&ctx->tracker, ctx->config.checks, ctx->states, n) != 0)
        return UV_ENOMEM;
    return 0;
}

int ha_scheduler_arm(ha_context *ctx)
{
    uv_update_time(&ctx->loop);
    uint64_t now = uv_now(&ctx->loop);
    ctx->last_eval_ms = now;
    for (size_t i = 0; i < ctx->config.n_checks; i++) {
        ha_check_runtime *rt = &ctx->checks[i];
        const ha_check_config *c = &ctx->config.checks[i];
        ctx->states[i].started_mono_ms = now; /* the start period begins now */
        /* First probe at once, spread over up to 100 ms so a big config doesn't connect to
         * everything in the same millisecond. */
        uint64_t spread = c->interval_ms / 10 < 100 ? c->interval_ms / 10 : 100;
        rt->planned_ms = now + (spread ? next_random(ctx) % spread : 0);
        int rc = uv_timer_start(&rt->timer, on_check_timer, rt->planned_ms - now, 0);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void ha_scheduler_stop(ha_context *ctx)
{
    if (ctx->batch.loop && !uv_is_closing((uv_handle_t *)&ctx->batch))
        uv_close((uv_handle_t *)&ctx->batch, NULL);
    if (!ctx->checks)
        return;
    for (size_t i = 0; i < ctx->config.n_checks; i++) {
        ha_check_runtime *rt = &ctx->checks[i];
        if (rt->timer.loop && !uv_is_closing((uv_handle_t *)&rt->timer))
            uv_close((uv_handle_t *)&rt->timer, NULL);
        if (rt->probe_ready)
            ha_probe_close(&rt->probe);
    }
    /* After the probes: pending lookups end here, their callbacks see closed probes. */
    ha_resolver_close(ctx->resolver);
    ctx->resolver = NULL;
}

void ha_scheduler_free(ha_context *ctx)
{
    if (ctx->checks)
        for (size_t i = 0; i < ctx->config.n_checks; i++)
            if (ctx->checks[i].probe_ready)
                ha_probe_free(&ctx->checks[i].probe);
    ha_agg_tracker_free(&ctx->tracker);
    free(ctx->checks);
    free(ctx->states);
    ctx->checks = NULL;
    ctx->states = NULL;
}
