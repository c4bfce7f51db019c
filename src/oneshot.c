/* oneshot.c - `healthagg check URL...`: run each target's check once, concurrently, with the
 * same probe engine the daemon uses, print a line per target, exit 0 iff all passed.
 * It is the curl replacement for a shell-less image: HEALTHCHECK CMD ["/healthagg","check",
 * "http://127.0.0.1:8080/healthz"] needs nothing else in the image. Exit codes are 0 or 1
 * only, since Docker reserves 2. */
#include "healthagg/check.h"
#include "healthagg/commands.h"

#include <stdlib.h>
#include <string.h>

typedef struct oneshot {
    ha_check_config cfg;
    ha_probe probe;
    bool inited;
    bool done;
    ha_result result;
} oneshot;

static void on_done(ha_probe *p, const ha_result *r)
{
    oneshot *o = p->data;
    o->done = true;
    o->result = *r;
}

int ha_cmd_check(const char *const *urls, size_t n, uint64_t timeout_ms, FILE *out)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        fprintf(out, "fail: cannot start an event loop\n");
        return 1;
    }
    oneshot *all = calloc(n, sizeof(*all));
    if (!all) {
        fprintf(out, "fail: out of memory\n");
        uv_loop_close(&loop);
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        oneshot *o = &all[i];
        char err[HA_ERR_MAX];
        ha_check_config *c = &o->cfg;
        c->timeout_ms = timeout_ms;
        c->interval_ms = timeout_ms + 1;
        c->failure_threshold = c->success_threshold = 1;
        c->critical = true;
        c->expect[0].lo = 200;
        c->expect[0].hi = 399;
        c->n_expect = 1;
        c->max_response_bytes = 64 * 1024;
        snprintf(c->url_text, sizeof(c->url_text), "%s", urls[i]);
        if (ha_parse_url(urls[i], &c->url, err, sizeof(err)) != 0) {
            o->done = true;
            o->result.ok = false;
            snprintf(o->result.reason, sizeof(o->result.reason), "%.190s", err);
            continue;
        }
        int e = ha_probe_init(&o->probe, &loop, c, on_done, o);
        if (e != 0) {
            o->done = true;
            snprintf(o->result.reason, sizeof(o->result.reason), "%s", uv_strerror(e));
            continue;
        }
        o->inited = true;
        ha_probe_start(&o->probe);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once every probe reported and its socket closed */
    for (size_t i = 0; i < n; i++) {
        oneshot *o = &all[i];
        if (o->inited)
            ha_probe_close(&o->probe);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < n; i++) {
        oneshot *o = &all[i];
        if (o->inited)
            ha_probe_free(&o->probe);
        if (!o->done || !o->result.ok)
            rc = 1;
        fprintf(out, "%s %s: %s", o->result.ok ? "pass" : "fail", urls[i],
                o->done ? o->result.reason : "no result");
        if (o->inited && o->done)
            fprintf(out, " (%.1f ms)", (double)o->result.latency_us / 1000.0);
        fputc('\n', out);
    }
    fflush(out);
    free(all);
    uv_loop_close(&loop);
    return rc;
}
