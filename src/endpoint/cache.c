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
 * The watchdog lives here too: if the scheduler has not fired for 3x the largest interval,
 * /livez and /readyz answer 503 "stale" - the checker is stuck, which is not the same as the
 * app being down, and the message says so. */
#include "healthagg/context.h"

#include <stdio.h>
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
    return v;
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
    if (!c->forbidden || !c->health_history || !c->livez_ok || !c->livez_stale ||
        !c->readyz_stale || !c->not_found || !c->bad_method || !c->bad_request || !c->too_large ||
        !c->has_body || !c->busy || !c->readyz || !c->health || !c->metrics)
        return -1;
    return 0;
}

void ha_cache_free(ha_context *ctx)
{
    ha_cache *c = &ctx->cache;
    ha_response **all[] = {&c->livez_ok,    &c->livez_stale,   &c->readyz_stale, &c->readyz,
                           &c->health,      &c->metrics,       &c->not_found,    &c->bad_method,
                           &c->bad_request, &c->too_large,     &c->has_body,     &c->busy,
                           &c->forbidden,   &c->health_history};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        ha_response_unref(*all[i]);
        *all[i] = NULL;
    }
    ha_metrics_cache_free(c->metrics_parts);
    c->metrics_parts = NULL;
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
