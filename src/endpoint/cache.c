/* cache.c - the rendered responses the server hands out, and when they are rebuilt.
 *
 * /readyz is what ECS's probe and load balancers hit, so it is rebuilt eagerly: once per loop
 * turn in which results changed it, and only if its text or status actually changed.
 * /health and /metrics change with every result (latencies, timestamps) and cost O(checks)
 * to render; rebuilding them eagerly for every batch would be quadratic work with a thousand
 * checks at a one-second interval, for pages that are usually read every 15-60 s. So results
 * only mark them dirty and the next reader pays for one render; every other reader gets the
 * cached bytes. /metrics keeps each check's lines between renders (metrics.c), so that render
 * re-formats only the checks with new results and copies the rest. The trade-off taken: the first
 * /health or /metrics request after new results allocates; /readyz and /livez requests never do.
 *
 * Each group (config "groups") has the same three: its /readyz kept current, its /health (and
 * ?history=1) re-rendered by the next reader; a request for a group no check has gets one
 * prebuilt 404 naming the known groups.
 *
 * The watchdog lives here too: if the scheduler has not fired for 3x the largest interval,
 * /livez and /readyz answer 503 "stale" - the checker is stuck, which is not the same as the
 * app being down, and the message says so. */
#include "healthagg/context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ha_response *plain(int status, const char *extra, const char *body)
{
    return ha_response_new(status, "text/plain; charset=utf-8", extra, body, strlen(body));
}

static void replace(ha_response **slot, ha_response *fresh)
{
    if (!fresh)
        return; /* out of memory: keep serving the previous version rather than nothing */
    ha_response_unref(*slot);
    *slot = fresh;
}

static ha_view make_view(const ha_context *ctx)
{
    ha_view v;
    v.cfg = ctx->config.checks;
    v.st = ctx->states;
    v.n = ctx->config.n_checks;
    v.agg = ctx->agg;
    v.summary = ctx->summary;
    v.start_wall_ms = ctx->start_wall_ms;
    v.sched_lag = &ctx->sched_lag;
    v.loop_turn = &ctx->loop_turn;
    v.probes_skipped = ctx->probes_skipped;
    v.enforce = ctx->config.enforce;
    v.history = &ctx->history;
    v.with_history = false;
    v.idx = NULL;
    v.group = NULL;
    v.groups = ctx->config.groups;
    v.group_states = ctx->group_states;
    v.n_groups = ctx->config.n_groups;
    return v;
}

/* The view of one group: its members, its verdict. */
static ha_view group_view(const ha_context *ctx, size_t g)
{
    ha_view v = make_view(ctx);
    const ha_group *gr = &ctx->config.groups[g];
    v.idx = gr->members;
    v.n = gr->n_members;
    v.group = gr->name;
    v.agg = ctx->group_states[g].agg;
    v.summary = ctx->group_states[g].summary;
    return v;
}

/* 404 for ?group=NAME with a NAME no check has: says which ones exist. /readyz gets the line
 * as text, /health the same line as the "output" of a health+json body. */
static ha_response *unknown_group(const ha_context *ctx, bool json)
{
    const ha_config *cfg = &ctx->config;
    char line[HA_MAX_GROUPS * (HA_GROUP_NAME_MAX + 2) + 128];
    size_t off;
    if (cfg->n_groups == 0) {
        snprintf(line, sizeof(line),
                 "unknown group: no check has \"groups\" in this config, so ?group= matches "
                 "nothing; ask without it");
    } else {
        off = (size_t)snprintf(line, sizeof(line), "unknown group; known groups: ");
        for (size_t g = 0; g < cfg->n_groups && off < sizeof(line); g++)
            off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s", g ? ", " : "",
                                    cfg->groups[g].name);
    }
    if (!json) {
        char body[sizeof(line) + 2];
        snprintf(body, sizeof(body), "%s\n", line);
        return plain(404, NULL, body);
    }
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    ha_response *r = NULL;
    if (o && cJSON_AddStringToObject(o, "status", "fail") &&
        cJSON_AddStringToObject(o, "output", line) && (text = cJSON_PrintUnformatted(o))) {
        size_t n = strlen(text);
        char *nl = realloc(text, n + 2);
        if (nl) {
            text = nl;
            memcpy(text + n, "\n", 2);
            r = ha_response_new(404, "application/health+json", NULL, text, n + 1);
        }
    }
    free(text);
    cJSON_Delete(o);
    return r;
}

static int group_cache_init(ha_context *ctx)
{
    ha_cache *c = &ctx->cache;
    size_t n = ctx->config.n_groups;
    if (n == 0)
        return 0;
    if (!(c->groups = calloc(n, sizeof(*c->groups))))
        return -1;
    for (size_t g = 0; g < n; g++) {
        ha_group_cache *gc = &c->groups[g];
        ha_view v = group_view(ctx, g);
        gc->readyz = ha_render_readyz(&v);
        gc->health = ha_render_health(&v);
        v.with_history = true;
        gc->health_history = ha_render_health(&v);
        if (!gc->readyz || !gc->health || !gc->health_history)
            return -1;
    }
    return 0;
}

int ha_cache_init(ha_context *ctx)
{
    ha_cache *c = &ctx->cache;
    char stale[160];
    uint64_t secs = (ctx->stale_after_ms + 999) / 1000;
    snprintf(stale, sizeof(stale),
             "stale: no check ran for over %llus; healthagg itself is stuck or was paused, "
             "the app may be fine\n",
             (unsigned long long)secs);
    c->livez_ok = plain(200, NULL, "alive\n");
    c->livez_stale = plain(503, NULL, stale);
    if (ctx->config.enforce) {
        c->readyz_stale = plain(503, NULL, stale);
    } else {
        char ro[sizeof(stale) + 48];
        snprintf(ro, sizeof(ro), "ok (report-only: would fail: %s", stale);
        size_t l = strlen(ro);
        if (l > 0 && ro[l - 1] == '\n' && l + 2 < sizeof(ro))
            memcpy(ro + l - 1, ")\n", 3);
        c->readyz_stale = plain(200, NULL, ro);
    }
    c->forbidden = plain(403, NULL,
                         "forbidden: /health and /metrics answer only loopback clients; set "
                         "server.public_details to true to allow others\n");
    c->not_found = plain(404, NULL, "not found: try /readyz, /livez, /health or /metrics\n");
    c->bad_method = plain(405, "Allow: GET, HEAD\r\nConnection: close\r\n",
                          "method not allowed: use GET or HEAD\n");
    c->bad_request = plain(400, "Connection: close\r\n", "bad request\n");
    c->too_large = plain(431, "Connection: close\r\n", "request headers too large\n");
    c->has_body = plain(413, "Connection: close\r\n", "health requests take no body\n");
    char busy[160];
    snprintf(busy, sizeof(busy),
             "busy: healthagg is at server.max_connections (%u open connections); this one was "
             "refused\n",
             ctx->config.limits.max_connections);
    c->busy = plain(503, "Connection: close\r\n", busy);
    ha_view v = make_view(ctx);
    c->readyz = ha_render_readyz(&v);
    c->health = ha_render_health(&v);
    c->metrics_parts = ha_metrics_cache_new(ctx->config.checks, ctx->config.n_checks);
    c->metrics = c->metrics_parts ? ha_render_metrics_cached(c->metrics_parts, &v) : NULL;
    v.with_history = true;
    c->health_history = ha_render_health(&v);
    c->unknown_group = unknown_group(ctx, false);
    c->unknown_group_json = unknown_group(ctx, true);
    if (!c->unknown_group || !c->unknown_group_json || group_cache_init(ctx) != 0)
        return -1;
    if (!c->forbidden || !c->health_history || !c->livez_ok || !c->livez_stale ||
        !c->readyz_stale || !c->not_found || !c->bad_method || !c->bad_request || !c->too_large ||
        !c->has_body || !c->busy || !c->readyz || !c->health || !c->metrics)
        return -1;
    return 0;
}

void ha_cache_free(ha_context *ctx)
{
    ha_cache *c = &ctx->cache;
    ha_response **all[] = {
        &c->livez_ok,    &c->livez_stale,    &c->readyz_stale,  &c->readyz,
        &c->health,      &c->metrics,        &c->not_found,     &c->bad_method,
        &c->bad_request, &c->too_large,      &c->has_body,      &c->busy,
        &c->forbidden,   &c->health_history, &c->unknown_group, &c->unknown_group_json};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        ha_response_unref(*all[i]);
        *all[i] = NULL;
    }
    ha_metrics_cache_free(c->metrics_parts);
    c->metrics_parts = NULL;
    for (size_t g = 0; c->groups && g < ctx->config.n_groups; g++) {
        ha_response_unref(c->groups[g].readyz);
        ha_response_unref(c->groups[g].health);
        ha_response_unref(c->groups[g].health_history);
    }
    free(c->groups);
    c->groups = NULL;
}

void ha_cache_results_changed(ha_context *ctx, bool readyz_changed)
{
    ha_cache *c = &ctx->cache;
    if (readyz_changed) {
        ha_view v = make_view(ctx);
        replace(&c->readyz, ha_render_readyz(&v));
    }
    c->health_dirty = true;
    c->metrics_dirty = true;
    c->history_dirty = true;
}

bool ha_cache_stale(const ha_context *ctx)
{
    uint64_t now = uv_now((uv_loop_t *)&ctx->loop);
    return !ctx->draining &&
           (now - ctx->last_eval_ms > ctx->stale_after_ms || ctx->stall_pending > 0 ||
            (ctx->stall_ms && now < ctx->stall_ms + HA_STALL_HOLD_MS));
}

ha_response *ha_cache_livez(ha_context *ctx)
{
    return ha_cache_stale(ctx) ? ctx->cache.livez_stale : ctx->cache.livez_ok;
}

ha_response *ha_cache_readyz(ha_context *ctx)
{
    return ha_cache_stale(ctx) ? ctx->cache.readyz_stale : ctx->cache.readyz;
}

ha_response *ha_cache_health(ha_context *ctx)
{
    ha_cache *c = &ctx->cache;
    if (c->health_dirty) {
        ha_view v = make_view(ctx);
        replace(&c->health, ha_render_health(&v));
        c->health_dirty = false;
    }
    return c->health;
}

ha_response *ha_cache_health_history(ha_context *ctx)
{
    ha_cache *c = &ctx->cache;
    if (c->history_dirty) {
        ha_view v = make_view(ctx);
        v.with_history = true;
        replace(&c->health_history, ha_render_health(&v));
        c->history_dirty = false;
    }
    return c->health_history;
}

ha_response *ha_cache_metrics(ha_context *ctx)
{
    ha_cache *c = &ctx->cache;
    if (c->metrics_dirty) {
        ha_view v = make_view(ctx);
        replace(&c->metrics, ha_render_metrics_cached(c->metrics_parts, &v));
        c->metrics_dirty = false;
    }
    return c->metrics;
}

void ha_cache_group_changed(ha_context *ctx, size_t g, bool readyz_changed)
{
    ha_group_cache *gc = &ctx->cache.groups[g];
    if (readyz_changed) {
        ha_view v = group_view(ctx, g);
        replace(&gc->readyz, ha_render_readyz(&v));
    }
    gc->health_dirty = true;
    gc->history_dirty = true;
}

ha_response *ha_cache_group_readyz(ha_context *ctx, size_t g)
{
    return ha_cache_stale(ctx) ? ctx->cache.readyz_stale : ctx->cache.groups[g].readyz;
}

ha_response *ha_cache_group_health(ha_context *ctx, size_t g, bool history)
{
    ha_group_cache *gc = &ctx->cache.groups[g];
    bool *dirty = history ? &gc->history_dirty : &gc->health_dirty;
    ha_response **slot = history ? &gc->health_history : &gc->health;
    if (*dirty) {
        ha_view v = group_view(ctx, g);
        v.with_history = history;
        replace(slot, ha_render_health(&v));
        *dirty = false;
    }
    return *slot;
}
