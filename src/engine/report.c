/* report.c - what `serve` tells the container log about the task's verdict, beyond single
 * check transitions: a `health_check` line each time the answer `probe` gets from /readyz
 * changes (what ECS acts on), a `still_unhealthy` summary every still_unhealthy_interval (1 min)
 * while the aggregate is not ready, and the flight recorder's `history` lines.
 *
 * The trade-off: these lines repeat what transitions already said, on purpose. CloudWatch
 * searches and people skimming a log stream after a task was replaced look for one line that
 * says what ECS saw and why, not for a chain of transitions to reconstruct. */
#include "healthagg/context.h"
#include "healthagg/log.h"
#include "healthagg/timeutil.h"

#include <string.h>

static void add_time(cJSON *o, const char *key, uint64_t wall_ms)
{
    char when[HA_RFC3339_MAX];
    ha_format_rfc3339(wall_ms, when, sizeof(when));
    cJSON_AddStringToObject(o, key, when);
}

static void on_still_unhealthy(uv_timer_t *t)
{
    ha_context *ctx = t->data;
    const ha_config *cfg = &ctx->config;
    uint64_t now = ha_wall_ms();
    cJSON *o = ha_log_begin("warn", "still_unhealthy");
    if (o) {
        add_time(o, "since", ctx->unhealthy_since_wall_ms);
        cJSON_AddNumberToObject(o, "for_s", (double)((now - ctx->unhealthy_since_wall_ms) / 1000));
        cJSON_AddStringToObject(o, "aggregate", ha_agg_status_name(ctx->agg));
        cJSON_AddStringToObject(o, "reason", ctx->summary);
        cJSON_AddBoolToObject(o, "probe_healthy", ctx->probe_ok);
        cJSON_AddBoolToObject(o, "enforced", cfg->enforce);
        cJSON *arr = cJSON_AddArrayToObject(o, "failing");
        for (size_t i = 0; arr && i < cfg->n_checks; i++) {
            const ha_check_state *s = &ctx->states[i];
            if (s->status == HA_CHECK_PASS)
                continue;
            cJSON *e = cJSON_CreateObject();
            if (!e)
                break;
            cJSON_AddStringToObject(e, "check", cfg->checks[i].name);
            cJSON_AddStringToObject(e, "state", ha_check_status_name(s->status));
            add_time(e, "since", ctx->checks[i].status_since_wall_ms);
            cJSON_AddNumberToObject(e, "consecutive_failures", s->consecutive_failures);
            cJSON_AddStringToObject(e, "reason", s->has_result ? s->last.reason : "no result yet");
            if (s->last_success_wall_ms)
                add_time(e, "last_success", s->last_success_wall_ms);
            cJSON_AddBoolToObject(e, "critical", cfg->checks[i].critical);
            cJSON_AddItemToArray(arr, e);
        }
    }
    ha_log_emit(o);
}

int ha_report_init(ha_context *ctx)
{
    uint64_t now = ha_wall_ms();
    for (size_t i = 0; i < ctx->config.n_checks; i++)
        ctx->checks[i].status_since_wall_ms = now;
    /* No line for the verdict /readyz starts with: "starting" (503), or 200 in report-only. */
    ctx->probe_ok = ha_agg_probe_ok(ctx->agg, ctx->config.enforce);
    int rc = uv_timer_init(&ctx->loop, &ctx->still_unhealthy);
    if (rc != 0)
        return rc;
    ctx->still_unhealthy.data = ctx;
    ha_report_verdict(ctx);
    return 0;
}

void ha_report_verdict(ha_context *ctx)
{
    const ha_config *cfg = &ctx->config;
    bool ok = ha_agg_probe_ok(ctx->agg, cfg->enforce);
    if (ok != ctx->probe_ok) {
        char line[HA_SUMMARY_MAX + 48];
        ha_agg_probe_line(ctx->agg, cfg->enforce, ctx->summary, line, sizeof(line));
        cJSON *o = ha_log_begin(ok ? "info" : "warn", "health_check");
        if (o) {
            cJSON_AddStringToObject(o, "from", ctx->probe_ok ? "healthy" : "unhealthy");
            cJSON_AddStringToObject(o, "to", ok ? "healthy" : "unhealthy");
            cJSON_AddStringToObject(o, "reason", line);
            cJSON_AddNumberToObject(o, "probe_exit_code", ok ? 0 : 1);
            cJSON_AddStringToObject(o, "aggregate", ha_agg_status_name(ctx->agg));
            cJSON_AddBoolToObject(o, "enforced", cfg->enforce);
        }
        ha_log_emit(o);
        ctx->probe_ok = ok;
    }
    bool unhealthy = !ha_agg_ready(ctx->agg) && ctx->agg != HA_AGG_DRAINING;
    if (unhealthy && ctx->unhealthy_since_wall_ms == 0) {
        ctx->unhealthy_since_wall_ms = ha_wall_ms();
        if (cfg->still_unhealthy_every_ms && !ctx->stopping)
            uv_timer_start(&ctx->still_unhealthy, on_still_unhealthy, cfg->still_unhealthy_every_ms,
                           cfg->still_unhealthy_every_ms);
    } else if (!unhealthy && ctx->unhealthy_since_wall_ms != 0) {
        ctx->unhealthy_since_wall_ms = 0;
        uv_timer_stop(&ctx->still_unhealthy);
    }
}

void ha_report_transition(ha_context *ctx, size_t i, ha_check_status from)
{
    (void)from;
    ctx->checks[i].status_since_wall_ms = ctx->states[i].last_wall_ms;
    if (ctx->states[i].status == HA_CHECK_FAIL)
        ha_history_log(&ctx->history, &ctx->config.checks[i], i, "fail", ctx->config.enforce);
}

void ha_report_signal(ha_context *ctx, const char *signal_name)
{
    for (size_t i = 0; i < ctx->config.n_checks; i++)
        ha_history_log(&ctx->history, &ctx->config.checks[i], i, signal_name, ctx->config.enforce);
}

void ha_report_close(ha_context *ctx)
{
    uv_handle_t *h = (uv_handle_t *)&ctx->still_unhealthy;
    if (h->loop && !uv_is_closing(h))
        uv_close(h, NULL);
}
