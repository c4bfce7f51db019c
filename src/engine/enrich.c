/* enrich.c - ECS task metadata in `serve`: which task this is (the startup line) and, for a
 * failing check that names its task container ("container": "app"), how that container is doing,
 * appended to the check's reason: "connect: connection refused (127.0.0.1:8080); container app
 * STOPPED, exit code 137".
 *
 * Only with ECS_CONTAINER_METADATA_URI_V4 set. The startup fetch runs on a private loop before
 * the daemon's loop starts, bounded to one second, so the startup line can carry the task. Later
 * fetches run on the daemon's loop, only when a probe of a check with a `container` fails, at
 * most once per that check's interval, one at a time; a status older than two intervals is not
 * used. The endpoint is never a reason to fail: an error is logged once (until a fetch succeeds
 * again) and the reasons simply go without the container part. */
#include "healthagg/context.h"
#include "healthagg/log.h"
#include "healthagg/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STARTUP_TIMEOUT_MS 1000
#define FETCH_TIMEOUT_MS 2000
#define SUFFIX_MARK "; container "

static bool any_container_check(const ha_context *ctx)
{
    for (size_t i = 0; i < ctx->config.n_checks; i++)
        if (ctx->config.checks[i].container[0])
            return true;
    return false;
}

static void log_error_once(ha_context *ctx, const char *error)
{
    if (ctx->metadata_error_logged)
        return;
    ctx->metadata_error_logged = true;
    cJSON *o = ha_log_begin("warn", "task_metadata");
    if (o) {
        cJSON_AddStringToObject(o, "error", error);
        cJSON_AddStringToObject(o, "note",
                                "the ECS task metadata endpoint is only used to explain "
                                "failures; checks go on without it (logged once)");
    }
    ha_log_emit(o);
}

void ha_enrich_start(ha_context *ctx)
{
    const char *uri = getenv("ECS_CONTAINER_METADATA_URI_V4");
    if (!uri || !*uri)
        return;
    char err[256];
    ctx->task = calloc(1, sizeof(*ctx->task));
    if (ctx->task &&
        ha_metadata_fetch_once(uri, STARTUP_TIMEOUT_MS, ctx->task, err, sizeof(err)) != 0) {
        free(ctx->task);
        ctx->task = NULL;
        snprintf(ctx->task_error, sizeof(ctx->task_error), "%s", err);
    }
    if (any_container_check(ctx)) {
        ctx->metadata = ha_metadata_new(&ctx->loop, uri, err, sizeof(err));
        if (!ctx->metadata && !ctx->task_error[0])
            snprintf(ctx->task_error, sizeof(ctx->task_error), "%s", err);
    }
}

void ha_enrich_startup_fields(const ha_context *ctx, cJSON *startup)
{
    if (ctx->task) {
        const ha_task_info *t = ctx->task;
        cJSON *o = cJSON_AddObjectToObject(startup, "task");
        if (!o)
            return;
        char fr[sizeof(t->family) + sizeof(t->revision) + 2];
        snprintf(fr, sizeof(fr), "%s:%s", t->family, t->revision);
        cJSON_AddStringToObject(o, "arn", t->task_arn);
        cJSON_AddStringToObject(o, "family_revision", fr);
        cJSON_AddStringToObject(o, "launch_type", t->launch_type);
        cJSON_AddStringToObject(o, "availability_zone", t->availability_zone);
        cJSON_AddStringToObject(o, "cluster", t->cluster);
    } else if (ctx->task_error[0]) {
        cJSON_AddStringToObject(startup, "task_metadata_error", ctx->task_error);
    }
}

/* Appends "; container NAME STATUS[, exit code N]" unless the reason already has it. */
static bool append_container(char *reason, size_t len, const ha_task_info *t, const char *name)
{
    if (strstr(reason, SUFFIX_MARK))
        return false;
    char d[128];
    ha_metadata_describe(t, name, d, sizeof(d));
    size_t rl = strlen(reason);
    snprintf(reason + rl, len - rl, "; %s", d);
    return true;
}

static void on_fetched(ha_metadata *m, bool ok, const char *error, void *data)
{
    ha_context *ctx = data;
    if (!ok) {
        log_error_once(ctx, error);
        return;
    }
    if (ctx->metadata_error_logged) {
        ctx->metadata_error_logged = false;
        cJSON *o = ha_log_begin("info", "task_metadata");
        if (o)
            cJSON_AddStringToObject(o, "note", "the task metadata endpoint answers again");
        ha_log_emit(o);
    }
    const ha_task_info *t = ha_metadata_task(m, NULL);
    bool changed = false;
    for (size_t i = 0; t && i < ctx->config.n_checks; i++) {
        const ha_check_config *c = &ctx->config.checks[i];
        ha_check_state *s = &ctx->states[i];
        if (c->container[0] && s->has_result && !s->last.ok && !s->last.inconclusive)
            changed |= append_container(s->last.reason, sizeof(s->last.reason), t, c->container);
    }
    if (changed && !ctx->stopping) {
        /* A failing check's reason is in the summary: rebuild it, and /readyz, /health and
         * /metrics with it, now rather than at that check's next probe. */
        ctx->tracker.summary_dirty = true;
        ha_scheduler_refresh(ctx);
    }
}

void ha_enrich_result(ha_context *ctx, size_t i, ha_result *r)
{
    const ha_check_config *c = &ctx->config.checks[i];
    if (!ctx->metadata || !c->container[0] || r->ok || r->inconclusive)
        return;
    uint64_t now = uv_now(&ctx->loop), fetched;
    const ha_task_info *t = ha_metadata_task(ctx->metadata, &fetched);
    /* Fetched at most once per interval while failing: a status from the last two intervals
     * (plus a fetch's time) is the current one; an older one is not used. */
    if (t && now - fetched <= 2 * c->interval_ms + FETCH_TIMEOUT_MS)
        append_container(r->reason, sizeof(r->reason), t, c->container);
    ha_check_runtime *rt = &ctx->checks[i];
    if (rt->metadata_asked_ms && now - rt->metadata_asked_ms < c->interval_ms)
        return;
    if (ha_metadata_fetch(ctx->metadata, FETCH_TIMEOUT_MS, on_fetched, ctx) == 0)
        rt->metadata_asked_ms = now ? now : 1;
}

void ha_enrich_close(ha_context *ctx)
{
    ha_metadata_close(ctx->metadata);
    ctx->metadata = NULL; /* freed by its close callbacks */
}

void ha_enrich_free(ha_context *ctx)
{
    free(ctx->task);
    ctx->task = NULL;
}
