/* oneshot.c - `healthagg check URL...`: run each target's check once, concurrently, with the
 * same probe engine the daemon uses, print a line per target, exit 0 iff all passed.
 * It is the curl replacement for a shell-less image: HEALTHCHECK CMD ["/healthagg","check",
 * "http://127.0.0.1:8080/healthz"] needs nothing else in the image. Exit codes are 0 or 1
 * only, since Docker reserves 2. */
#include "healthagg/check.h"
#include "healthagg/commands.h"
#include "healthagg/quote.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct oneshot {
    ha_check_config cfg;
    ha_probe probe;
    bool inited;
    bool done;
    ha_result result;
    size_t *remaining; /* probes still running; the loop stops at 0 */
} oneshot;

static void on_done(ha_probe *p, const ha_result *r)
{
    oneshot *o = p->data;
    o->done = true;
    o->result = *r;
    if (--*o->remaining == 0)
        uv_stop(p->loop); /* don't wait for a lookup that outlived its attempt */
}

int ha_cmd_check(const char *const *urls, size_t n, uint64_t timeout_ms, const cJSON *defaults,
                 FILE *out)
{
    /* A target that closes while we write (an HTTP/1 server answering an HTTP/2 preface) must
     * cost a reason ("write: broken pipe"), not the whole command. */
    signal(SIGPIPE, SIG_IGN);
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
    size_t remaining = 0;
    ha_resolver *resolver = NULL;
    for (size_t i = 0; i < n; i++) {
        oneshot *o = &all[i];
        char err[HA_ERR_MAX];
        ha_check_config *c = &o->cfg;
        c->timeout_ms = timeout_ms;
        c->interval_ms = timeout_ms + 1;
        c->failure_threshold = c->success_threshold = 1;
        c->critical = true;
        o->remaining = &remaining;
        ha_key_source src = {defaults, NULL, urls[i], err, sizeof(err)};
        if (ha_check_parse_url(c, urls[i], err, sizeof(err)) != 0 ||
            ha_check_parse_keys(c, &src) != 0) {
            o->done = true;
            o->result.ok = false;
            snprintf(o->result.reason, sizeof(o->result.reason), "%.190s", err);
            continue;
        }
        ha_addr_list lit;
        if (!resolver && c->row->transport &&
            !ha_addr_literal(c->url.host, c->url.host_is_ipv6, 1, &lit) &&
            !(resolver = ha_resolver_new(&loop, err, sizeof(err)))) {
            o->done = true;
            snprintf(o->result.reason, sizeof(o->result.reason), "%.190s", err);
            continue;
        }
        int e = ha_probe_init(&o->probe, &loop, resolver, c, on_done, o);
        if (e != 0) {
            o->done = true;
            snprintf(o->result.reason, sizeof(o->result.reason), "%s", uv_strerror(e));
            continue;
        }
        o->inited = true;
        remaining++;
    }
    for (size_t i = 0; i < n; i++)
        if (all[i].inited)
            ha_probe_start(&all[i].probe);
    if (remaining > 0)
        uv_run(&loop, UV_RUN_DEFAULT); /* stops once every probe reported */
    for (size_t i = 0; i < n; i++) {
        oneshot *o = &all[i];
        if (o->inited)
            ha_probe_close(&o->probe);
    }
    ha_resolver_close(resolver); /* ends a lookup still in flight */
    uv_run(&loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < n; i++) {
        oneshot *o = &all[i];
        if (o->inited)
            ha_probe_free(&o->probe);
        if (!o->done || !o->result.ok)
            rc = 1;
        char shown[HA_URL_TEXT_MAX]; /* the URL as typed may hold any bytes: print them safely */
        ha_printable(shown, sizeof(shown), urls[i], strlen(urls[i]));
        fprintf(out, "%s %s: %s", o->result.ok ? "pass" : "fail", shown,
                o->done ? o->result.reason : "no result");
        if (o->inited && o->done)
            fprintf(out, " (%.1f ms)", (double)o->result.latency_us / 1000.0);
        fputc('\n', out);
    }
    fflush(out);
    for (size_t i = 0; i < n; i++)
        ha_check_config_release(&all[i].cfg);
    free(all);
    uv_loop_close(&loop);
    return rc;
}
