/* turns.c - how long each event loop turn works: the figure that says whether a scrape of
 * /metrics (or anything else) holds up every timer and request behind it.
 *
 * A uv_prepare handle runs once per turn, just before the loop waits for events. Between two
 * of its runs the loop waited (libuv's idle-time metric, UV_METRICS_IDLE_TIME) and worked (the
 * rest); the work goes into ctx->loop_turn, exported as healthagg_loop_turn_seconds. The
 * trade-off: with the idle-time metric on, libuv first polls with a zero timeout before it
 * blocks, one more epoll_wait per turn that would block (well under a microsecond, against the
 * ~100 us of kernel work of a probe), in exchange for the exact work per turn. */
#include "healthagg/context.h"

static void on_turn(uv_prepare_t *h)
{
    ha_context *ctx = h->data;
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(&ctx->loop);
    if (ctx->turn_prev_ns) {
        uint64_t elapsed = now - ctx->turn_prev_ns, waited = idle - ctx->turn_prev_idle_ns;
        ha_histogram_observe(&ctx->loop_turn, elapsed > waited ? (elapsed - waited) / 1000 : 0);
    }
    ctx->turn_prev_ns = now;
    ctx->turn_prev_idle_ns = idle;
}

int ha_turns_start(ha_context *ctx)
{
    int rc = uv_loop_configure(&ctx->loop, UV_METRICS_IDLE_TIME);
    if (rc != 0)
        return rc;
    if ((rc = uv_prepare_init(&ctx->loop, &ctx->turn)) != 0)
        return rc;
    ctx->turn.data = ctx;
    /* Not a reason to keep the loop running on its own. */
    uv_unref((uv_handle_t *)&ctx->turn);
    return uv_prepare_start(&ctx->turn, on_turn);
}

void ha_turns_stop(ha_context *ctx)
{
    if (ctx->turn.loop && !uv_is_closing((uv_handle_t *)&ctx->turn))
        uv_close((uv_handle_t *)&ctx->turn, NULL);
}
