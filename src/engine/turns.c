/* turns.c - how much work each event loop turn does: the figure that says whether a scrape of
 * /metrics (or anything else) holds up every timer and request behind it.
 *
 * A uv_prepare handle runs once per turn, just before the loop waits for events. The thread's
 * CPU time between two of its runs is the work of one turn (the wait itself costs no CPU), and
 * goes into ctx->loop_turn, exported as healthagg_loop_turn_seconds. CPU time rather than wall
 * time because on a shared machine the kernel preempts the process for milliseconds at a time,
 * which says nothing about the work the loop does. The trade-off: clock_gettime of a CPU clock
 * is a system call, one per turn (well under a microsecond, against the ~100 us of kernel work
 * of a probe). */
#include "healthagg/context.h"

#include <time.h>

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_turn(uv_prepare_t *h)
{
    ha_context *ctx = h->data;
    uint64_t now = thread_cpu_ns();
    if (ctx->turn_prev_ns && now >= ctx->turn_prev_ns)
        ha_histogram_observe(&ctx->loop_turn, (now - ctx->turn_prev_ns) / 1000);
    ctx->turn_prev_ns = now;
}

int ha_turns_start(ha_context *ctx)
{
    if (thread_cpu_ns() == 0)
        return UV_ENOSYS;
    int rc = uv_prepare_init(&ctx->loop, &ctx->turn);
    if (rc != 0)
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
