/* serve.c - the daemon's life: load config, bind, start checks, log, run, drain, exit.
 *
 * Order matters: the config is validated and the port bound before any probe runs, so a bad
 * config or a taken port exits 2 with nothing half-started. On the first SIGTERM or SIGINT,
 * /readyz turns 503 "draining" at once and the process exits 0 after the configured grace;
 * a second signal during the grace exits at once. SIGHUP, SIGUSR1 and SIGUSR2 would kill the
 * process by default - a stray `docker kill -s HUP` would stop the task's essential container -
 * so they are caught: each logs the current verdict of every check and changes nothing (the
 * configuration is not re-read; restart the task to change it). Shutdown closes every handle
 * and lets the loop run dry, so every allocation is released (valgrind-clean). */
#include "healthagg/commands.h"
#include "healthagg/context.h"
#include "healthagg/log.h"
#include "healthagg/timeutil.h"

#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

static void begin_shutdown(ha_context *ctx)
{
    if (ctx->stopping)
        return;
    ctx->stopping = true;
    ha_scheduler_stop(ctx);
    ha_turns_stop(ctx);
    ha_report_close(ctx);
    ha_enrich_close(ctx);
    ha_server_stop(&ctx->server);
    uv_handle_t *hs[] = {(uv_handle_t *)&ctx->sigterm, (uv_handle_t *)&ctx->sigint,
                         (uv_handle_t *)&ctx->sighup,  (uv_handle_t *)&ctx->sigusr1,
                         (uv_handle_t *)&ctx->sigusr2, (uv_handle_t *)&ctx->grace};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (hs[i]->loop && !uv_is_closing(hs[i]))
            uv_close(hs[i], NULL);
}

static void on_grace_over(uv_timer_t *t)
{
    begin_shutdown(t->data);
}

static void on_signal(uv_signal_t *h, int signum)
{
    ha_context *ctx = h->data;
    if (ctx->draining) {
        begin_shutdown(ctx); /* second signal: don't make the operator wait */
        return;
    }
    ctx->draining = true;
    cJSON *o = ha_log_begin("info", "draining");
    if (o) {
        cJSON_AddStringToObject(o, "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT");
        cJSON_AddNumberToObject(o, "grace_ms", (double)ctx->config.grace_ms);
    }
    ha_log_emit(o);
    ha_report_signal(ctx, signum == SIGTERM ? "SIGTERM" : "SIGINT");
    ha_scheduler_refresh(ctx);
    if (uv_timer_start(&ctx->grace, on_grace_over, ctx->config.grace_ms, 0) != 0)
        begin_shutdown(ctx);
}

/* SIGHUP, SIGUSR1, SIGUSR2: one "signal" line with the aggregate and every check's state. */
static void on_info_signal(uv_signal_t *h, int signum)
{
    ha_context *ctx = h->data;
    const char *name = signum == SIGHUP ? "SIGHUP" : signum == SIGUSR1 ? "SIGUSR1" : "SIGUSR2";
    cJSON *o = ha_log_begin("info", "signal");
    if (o) {
        cJSON_AddStringToObject(o, "signal", name);
        cJSON_AddStringToObject(o, "action",
                                "logged the current state; nothing else changes (the "
                                "configuration is not re-read)");
        cJSON_AddStringToObject(o, "state", ha_agg_status_name(ctx->agg));
        cJSON_AddBoolToObject(o, "ready", ha_agg_ready(ctx->agg));
        cJSON_AddStringToObject(o, "reason", ctx->summary);
        cJSON *arr = cJSON_AddArrayToObject(o, "checks");
        for (size_t i = 0; arr && i < ctx->config.n_checks; i++) {
            const ha_check_state *s = &ctx->states[i];
            cJSON *e = cJSON_CreateObject();
            if (!e)
                break;
            cJSON_AddStringToObject(e, "name", ctx->config.checks[i].name);
            cJSON_AddStringToObject(e, "state", ha_check_status_name(s->status));
            char reason[HA_REASON_MAX + 64];
            ha_state_reason(s, &ctx->config.checks[i], reason, sizeof(reason));
            cJSON_AddStringToObject(e, "reason", reason);
            cJSON_AddItemToArray(arr, e);
        }
    }
    ha_log_emit(o);
}

/* File descriptors are shared by health clients and our own probes. If clients could take
 * them all, every probe would fail for want of a socket and the task would be marked
 * unhealthy by its own health checker. So: raise the soft limit to the hard one (as Go's
 * runtime does), then cap max_connections to what is left after a reserve for stdio, the
 * loop's own descriptors, the listener and one socket per check. */
static void fit_fd_budget(ha_context *ctx)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return;
    uint64_t reserve = 24 + ctx->config.n_checks;
    uint64_t budget = rl.rlim_cur > reserve + 1 ? rl.rlim_cur - reserve : 1;
    unsigned *max = &ctx->config.limits.max_connections;
    if (*max <= budget)
        return;
    cJSON *o = ha_log_begin("warn", "limits");
    if (o) {
        cJSON_AddStringToObject(o, "setting", "server.max_connections");
        cJSON_AddNumberToObject(o, "configured", *max);
        cJSON_AddNumberToObject(o, "effective", (double)budget);
        cJSON_AddNumberToObject(o, "nofile", (double)rl.rlim_cur);
        cJSON_AddStringToObject(o, "reason",
                                "not enough file descriptors (ulimit -n) for that many "
                                "connections and a socket per check; raise the limit "
                                "(ulimits in the task definition) or lower max_connections");
    }
    ha_log_emit(o);
    *max = (unsigned)budget;
}

static void log_startup(const ha_context *ctx)
{
    const ha_config *c = &ctx->config;
    cJSON *o = ha_log_begin("info", "startup");
    if (o) {
        cJSON_AddStringToObject(o, "version", HEALTHAGG_VERSION);
        cJSON_AddNumberToObject(o, "pid", (double)uv_os_getpid());
        cJSON_AddStringToObject(o, "listen", ctx->server.bound);
        cJSON_AddStringToObject(o, "config_source", c->source);
        cJSON_AddNumberToObject(o, "grace_ms", (double)c->grace_ms);
        cJSON_AddBoolToObject(o, "enforce", c->enforce);
        ha_enrich_startup_fields(ctx, o);
        cJSON_AddNumberToObject(o, "history_size", c->history_size);
        cJSON *lim = cJSON_AddObjectToObject(o, "server");
        if (lim) {
            cJSON_AddNumberToObject(lim, "max_connections", c->limits.max_connections);
            cJSON_AddNumberToObject(lim, "max_header_bytes", c->limits.max_header_bytes);
            cJSON_AddNumberToObject(lim, "request_timeout_ms",
                                    (double)c->limits.request_timeout_ms);
            cJSON_AddNumberToObject(lim, "idle_timeout_ms", (double)c->limits.idle_timeout_ms);
            cJSON_AddNumberToObject(lim, "max_requests_per_connection",
                                    c->limits.max_requests_per_connection);
            cJSON_AddBoolToObject(lim, "public_details", c->public_details);
            cJSON_AddBoolToObject(lim, "details_loopback_only", ctx->server.guard_details);
        }
        if (c->n_groups) {
            cJSON *g = cJSON_AddArrayToObject(o, "groups");
            for (size_t j = 0; g && j < c->n_groups; j++)
                cJSON_AddItemToArray(g, cJSON_CreateString(c->groups[j].name));
        }
        cJSON *arr = cJSON_AddArrayToObject(o, "checks");
        for (size_t i = 0; arr && i < c->n_checks; i++) {
            const ha_check_config *k = &c->checks[i];
            cJSON *e = cJSON_CreateObject();
            if (!e)
                break;
            cJSON_AddStringToObject(e, "name", k->name);
            cJSON_AddStringToObject(e, "url", k->url_text);
            cJSON_AddNumberToObject(e, "interval_ms", (double)k->interval_ms);
            cJSON_AddNumberToObject(e, "timeout_ms", (double)k->timeout_ms);
            cJSON_AddNumberToObject(e, "failure_threshold", k->failure_threshold);
            cJSON_AddNumberToObject(e, "success_threshold", k->success_threshold);
            cJSON_AddNumberToObject(e, "start_period_ms", (double)k->start_period_ms);
            if (k->start_interval_ms)
                cJSON_AddNumberToObject(e, "start_interval_ms", (double)k->start_interval_ms);
            if (k->container[0])
                cJSON_AddStringToObject(e, "container", k->container);
            cJSON_AddBoolToObject(e, "critical", k->critical);
            if (k->n_groups) {
                cJSON *g = cJSON_AddArrayToObject(e, "groups");
                for (unsigned j = 0; g && j < k->n_groups; j++)
                    cJSON_AddItemToArray(g, cJSON_CreateString(k->groups[j]));
            }
            ha_check_describe(k, e);
            cJSON_AddItemToArray(arr, e);
        }
    }
    ha_log_emit(o);
}

/* A plain `healthagg probe` - the ECS healthCheck - finds the sidecar through the environment
 * (HEALTHAGG_LISTEN, HEALTHAGG_CONFIG, HEALTHAGG_CONFIG_FILE), not through serve's flags. When
 * --listen or --config put the sidecar elsewhere, the health check would fail for no reason
 * the app could explain: say so at start. */
static void warn_probe_mismatch(const ha_context *ctx, const ha_config_inputs *in)
{
    ha_config_inputs env;
    memset(&env, 0, sizeof(env));
    env.env_file = in->env_file;
    env.env_inline = in->env_inline;
    env.env_listen = in->env_listen;
    char host[64], err[HA_ERR_MAX], url[128], bound_host[64];
    uint16_t port = 0;
    int rc = ha_config_listen_only(&env, host, sizeof(host), &port, err, sizeof(err));
    snprintf(bound_host, sizeof(bound_host), "%s", ctx->config.listen_host);
    /* Both sides as probe would connect: an any-address listener is reached on loopback. */
    char *hosts[] = {host, bound_host};
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(hosts[i], "0.0.0.0") == 0)
            strcpy(hosts[i], "127.0.0.1");
        else if (strcmp(hosts[i], "::") == 0)
            strcpy(hosts[i], "::1");
    }
    if (rc == 0 && port != 0 && port == ctx->config.listen_port && strcmp(host, bound_host) == 0)
        return;
    if (rc == 0) {
        char hp[96];
        ha_format_hostport(host, strchr(host, ':') != NULL, port, hp, sizeof(hp));
        snprintf(url, sizeof(url), "http://%s/readyz", hp);
    }
    cJSON *o = ha_log_begin("warn", "probe_mismatch");
    if (o) {
        cJSON_AddStringToObject(o, "listen", ctx->server.bound);
        cJSON_AddStringToObject(o, "probe_would_ask", rc == 0 ? url : err);
        cJSON_AddStringToObject(
            o, "reason",
            ctx->config.listen_port == 0
                ? "listening on port 0 (any free port): a plain `healthagg probe` cannot find "
                  "this sidecar; give it a fixed port in HEALTHAGG_LISTEN or the config"
                : "a plain `healthagg probe` (the ECS healthCheck) reads HEALTHAGG_LISTEN or the "
                  "config from the environment, not serve's --listen or --config: put the "
                  "address in HEALTHAGG_LISTEN or the config's \"listen\", or give probe --url");
    }
    ha_log_emit(o);
}

static void log_shutdown(const ha_context *ctx)
{
    cJSON *o = ha_log_begin("info", "shutdown");
    if (o) {
        cJSON_AddNumberToObject(o, "exit_code", 0);
        cJSON_AddNumberToObject(o, "connections_rejected", (double)ctx->server.rejected);
    }
    ha_log_emit(o);
}

static void release(ha_context *ctx)
{
    /* Everything was closed; let the loop run the close callbacks, then free. */
    begin_shutdown(ctx);
    uv_run(&ctx->loop, UV_RUN_DEFAULT);
    ha_server_free(&ctx->server);
    ha_scheduler_free(ctx);
    ha_enrich_free(ctx);
    ha_cache_free(ctx);
    ha_groups_free(ctx);
    ha_history_free(&ctx->history);
    if (uv_loop_close(&ctx->loop) != 0)
        fprintf(stderr, "healthagg: warning: event loop closed with handles still open\n");
    ha_config_free(&ctx->config);
    free(ctx);
}

int ha_cmd_serve(const ha_config_inputs *in)
{
    char err[HA_ERR_MAX * 2];
    ha_context *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        fprintf(stderr, "healthagg: out of memory\n");
        return 2;
    }
    if (ha_config_load(in, &ctx->config, err, sizeof(err)) != 0) {
        fprintf(stderr, "healthagg: %s\n", err);
        free(ctx);
        return 2;
    }
    int rc = uv_loop_init(&ctx->loop);
    if (rc != 0) {
        fprintf(stderr, "healthagg: cannot start the event loop: %s\n", uv_strerror(rc));
        ha_config_free(&ctx->config);
        free(ctx);
        return 2;
    }
    /* A peer closing mid-write must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);

    uint64_t max_interval = 0;
    for (size_t i = 0; i < ctx->config.n_checks; i++)
        if (ctx->config.checks[i].interval_ms > max_interval)
            max_interval = ctx->config.checks[i].interval_ms;
    ctx->stale_after_ms = 3 * max_interval;
    fit_fd_budget(ctx);
    ctx->start_wall_ms = ha_wall_ms();
    ctx->agg = HA_AGG_STARTING;

    if (ha_history_init(&ctx->history, ctx->config.n_checks, ctx->config.history_size) != 0) {
        fprintf(stderr,
                "healthagg: history_size: out of memory for %u results x %zu checks; "
                "lower history_size\n",
                ctx->config.history_size, ctx->config.n_checks);
        release(ctx);
        return 2;
    }
    if ((rc = ha_scheduler_start(ctx)) != 0) {
        fprintf(stderr, "healthagg: cannot start checks: %s\n", uv_strerror(rc));
        release(ctx);
        return 2;
    }
    ha_aggregate_summary(ctx->agg, ctx->config.checks, ctx->states, ctx->config.n_checks,
                         ctx->summary, sizeof(ctx->summary));
    if (ha_groups_init(ctx) != 0 || ha_cache_init(ctx) != 0) {
        fprintf(stderr, "healthagg: out of memory rendering responses\n");
        release(ctx);
        return 2;
    }
    if (ha_server_start(&ctx->server, ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "healthagg: %s\n", err);
        release(ctx);
        return 2;
    }
    if ((rc = uv_signal_init(&ctx->loop, &ctx->sigterm)) != 0 ||
        (rc = uv_signal_start(&ctx->sigterm, on_signal, SIGTERM)) != 0 ||
        (rc = uv_signal_init(&ctx->loop, &ctx->sigint)) != 0 ||
        (rc = uv_signal_start(&ctx->sigint, on_signal, SIGINT)) != 0 ||
        (rc = uv_signal_init(&ctx->loop, &ctx->sighup)) != 0 ||
        (rc = uv_signal_start(&ctx->sighup, on_info_signal, SIGHUP)) != 0 ||
        (rc = uv_signal_init(&ctx->loop, &ctx->sigusr1)) != 0 ||
        (rc = uv_signal_start(&ctx->sigusr1, on_info_signal, SIGUSR1)) != 0 ||
        (rc = uv_signal_init(&ctx->loop, &ctx->sigusr2)) != 0 ||
        (rc = uv_signal_start(&ctx->sigusr2, on_info_signal, SIGUSR2)) != 0 ||
        (rc = uv_timer_init(&ctx->loop, &ctx->grace)) != 0) {
        fprintf(stderr, "healthagg: cannot set up signal handling: %s\n", uv_strerror(rc));
        release(ctx);
        return 2;
    }
    ctx->sigterm.data = ctx->sigint.data = ctx->grace.data = ctx;
    ctx->sighup.data = ctx->sigusr1.data = ctx->sigusr2.data = ctx;
    if ((rc = ha_report_init(ctx)) != 0) {
        fprintf(stderr, "healthagg: cannot set up the report timer: %s\n", uv_strerror(rc));
        release(ctx);
        return 2;
    }

    ha_enrich_start(ctx);
    log_startup(ctx);
    ha_tls_log_insecure(ctx->config.checks, ctx->config.n_checks);
    warn_probe_mismatch(ctx, in);
    if ((rc = ha_turns_start(ctx)) != 0) {
        fprintf(stderr, "healthagg: cannot measure loop turns: %s\n", uv_strerror(rc));
        release(ctx);
        return 2;
    }
    if ((rc = ha_scheduler_arm(ctx)) != 0) {
        fprintf(stderr, "healthagg: cannot start check timers: %s\n", uv_strerror(rc));
        release(ctx);
        return 2;
    }
    uv_run(&ctx->loop, UV_RUN_DEFAULT);
    log_shutdown(ctx);
    release(ctx);
    return 0;
}
