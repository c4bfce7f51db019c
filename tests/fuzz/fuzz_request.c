/* fuzz_request.c - libFuzzer target for the health endpoint's request path (src/server.c).
 *
 * One sidecar context is built once, the way serve.c builds it (config, scheduler, cache,
 * server on 127.0.0.1:0), with two checks against 127.0.0.1:1 (refused) so the cache holds
 * real rendered state. The first probes are run to completion before fuzzing starts; with a
 * 1h interval nothing else fires, and the sweep timer is stopped, so every input sees the
 * same state: the run is deterministic.
 *
 * Per input: a socketpair(AF_UNIX) whose server end is handed to ha_server_adopt(); the
 * input is written into the client end in chunks whose sizes the first byte chooses, with
 * bounded UV_RUN_NOWAIT turns in between (split reads); whatever the server answers is read
 * back. Then the client end is closed and the loop must close the server's connection within
 * a bounded number of turns.
 *
 * Control byte (first input byte):
 *   bits 0-1  chunking: whole input / 1-byte chunks / 1-16 byte chunks / 1-512 byte chunks
 *   bit  2    half-close (SHUT_WR) the client end after writing
 *   bits 3-7  seed of the chunk-size generator; when bits 3-5 are all set (1 input in 8),
 *             a second connection is adopted first: with max_connections 1 the fuzzed one
 *             is then over the limit and must be closed at once, answered only with the
 *             503 "busy" response
 *
 * Invariants checked (abort() = a crash libFuzzer reports):
 *   - every answer starts with "HTTP/1.1 " (no partial or interleaved responses);
 *   - the server closes its end within bounded loop turns once the client closed;
 *   - no file descriptor leaks (socketpair fds stay below a small bound);
 *   - a rejected connection gets the 503 "busy" answer and nothing else, then is closed.
 * Leaks and UB are ASan/LSan/UBSan's job. */
#include "healthagg/config.h"
#include "healthagg/context.h"
#include "healthagg/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FD_BOUND 512
#define TURNS_AFTER_CLOSE 200

static ha_context *ctx;

static const char config_json[] =
    "{\"listen\": \"127.0.0.1:0\","
    " \"server\": {\"max_connections\": 1, \"max_header_bytes\": 1024,"
    "              \"max_requests_per_connection\": 3},"
    " \"checks\": ["
    "  {\"name\": \"app\", \"url\": \"http://127.0.0.1:1/healthz\", \"interval\": \"1h\","
    "   \"timeout\": \"1s\"},"
    "  {\"name\": \"db\", \"url\": \"tcp://127.0.0.1:1\", \"interval\": \"1h\","
    "   \"timeout\": \"1s\", \"critical\": false}]}";

static void die(const char *what)
{
    fprintf(stderr, "fuzz_request: %s\n", what);
    abort();
}

static void teardown(void)
{
    if (!ctx)
        return;
    ctx->stopping = true;
    ha_scheduler_stop(ctx);
    ha_server_stop(&ctx->server);
    ha_report_close(ctx);
    uv_run(&ctx->loop, UV_RUN_DEFAULT);
    ha_server_free(&ctx->server);
    ha_scheduler_free(ctx);
    ha_cache_free(ctx);
    if (uv_loop_close(&ctx->loop) != 0)
        die("loop still has open handles at teardown");
    ha_config_free(&ctx->config);
    free(ctx);
    ctx = NULL;
}

static bool all_results_in(void)
{
    for (size_t i = 0; i < ctx->config.n_checks; i++)
        if (!ctx->states[i].has_result)
            return false;
    return true;
}

static void setup(void)
{
    char err[HA_ERR_MAX * 2];
    signal(SIGPIPE, SIG_IGN); /* as serve.c does: a peer gone mid-write costs an EPIPE */
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        die("out of memory");
    if (uv_loop_init(&ctx->loop) != 0)
        die("uv_loop_init");
    if (ha_config_parse_json(config_json, sizeof(config_json) - 1, "fuzz", &ctx->config, err,
                             sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_request: config: %s\n", err);
        abort();
    }
    uint64_t max_interval = 0;
    for (size_t i = 0; i < ctx->config.n_checks; i++)
        if (ctx->config.checks[i].interval_ms > max_interval)
            max_interval = ctx->config.checks[i].interval_ms;
    ctx->stale_after_ms = 3 * max_interval;
    ctx->start_wall_ms = ha_wall_ms();
    ctx->agg = HA_AGG_STARTING;
    if (ha_scheduler_start(ctx) != 0)
        die("ha_scheduler_start");
    ha_aggregate_summary(ctx->agg, ctx->config.checks, ctx->states, ctx->config.n_checks,
                         ctx->summary, sizeof(ctx->summary));
    if (ha_cache_init(ctx) != 0)
        die("ha_cache_init");
    if (ha_server_start(&ctx->server, ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_request: server: %s\n", err);
        abort();
    }
    uv_timer_stop(&ctx->server.sweep); /* timeouts are wall-clock: keep inputs deterministic */
    if (ha_report_init(ctx) != 0) /* as serve.c: results feed the verdict report and its timer */
        die("ha_report_init");
    if (ha_scheduler_arm(ctx) != 0) /* as serve.c: check timers start right before the loop */
        die("ha_scheduler_arm");
    /* Let the first probes (connection refused) land, then the state stays put for 1h. */
    uint64_t deadline = uv_hrtime() + 5000000000ULL;
    while (!all_results_in()) {
        if (uv_hrtime() > deadline)
            die("first probe results did not arrive within 5s");
        uv_run(&ctx->loop, UV_RUN_ONCE);
    }
    uv_run(&ctx->loop, UV_RUN_NOWAIT); /* the batch (prepare) handle renders /readyz */
    atexit(teardown);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup();
    return 0;
}

typedef struct reader {
    char head[16];
    size_t total;
} reader;

static void drain(int fd, reader *r)
{
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            return;
        if (r->total < sizeof(r->head)) {
            size_t take = sizeof(r->head) - r->total;
            if (take > (size_t)n)
                take = (size_t)n;
            memcpy(r->head + r->total, buf, take);
        }
        r->total += (size_t)n;
    }
}

static void turn(int fd, reader *r, int times)
{
    for (int i = 0; i < times; i++) {
        uv_run(&ctx->loop, UV_RUN_NOWAIT);
        drain(fd, r);
    }
}

static unsigned next_size(unsigned *rng, unsigned mode)
{
    *rng = *rng * 1103515245u + 12345u;
    unsigned x = (*rng >> 16) & 0x7fff;
    switch (mode) {
    case 1:
        return 1;
    case 2:
        return 1 + x % 16;
    case 3:
        return 1 + x % 512;
    }
    return ~0u;
}

/* A connection over the limit is closed at once and never answered. */
static int adopt_extra(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair (extra)");
    if (ha_server_adopt(&ctx->server, sv[0]) != 0)
        die("ha_server_adopt (extra)");
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    return sv[1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    data++;
    size--;
    unsigned chunking = ctl & 3, rng = ctl >> 3;

    int extra = -1;
    bool over_limit = (ctl & 0x38) == 0x38;
    if (over_limit)
        extra = adopt_extra();

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair");
    if (sv[0] >= FD_BOUND || sv[1] >= FD_BOUND)
        die("file descriptors keep growing: the server leaks connections' fds");
    int client = sv[1];
    fcntl(client, F_SETFL, O_NONBLOCK);
    int rc = ha_server_adopt(&ctx->server, sv[0]);
    if (rc != 0) {
        fprintf(stderr, "fuzz_request: ha_server_adopt: %s\n", uv_strerror(rc));
        abort();
    }

    reader r = {{0}, 0};
    size_t off = 0;
    int stalls = 0;
    while (off < size) {
        size_t want = next_size(&rng, chunking);
        if (want > size - off)
            want = size - off;
        ssize_t n = write(client, data + off, want);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (++stalls > 1000)
                    break; /* the server stopped reading (e.g. closing): fine */
                turn(client, &r, 1);
                continue;
            }
            break; /* EPIPE / ECONNRESET: the server closed its end */
        }
        off += (size_t)n;
        turn(client, &r, 2);
    }
    if (ctl & 4)
        shutdown(client, SHUT_WR);
    turn(client, &r, 4);

    if (getenv("FUZZ_REQUEST_VERBOSE"))
        fprintf(stderr, "fuzz_request: %zu bytes in, %zu bytes answered: %.16s\n", size, r.total,
                r.head);
    if (r.total > 0) {
        size_t cmp = r.total < 9 ? r.total : 9;
        if (memcmp(r.head, "HTTP/1.1 ", cmp) != 0)
            die("an answer that does not start with a status line");
    }

    if (extra >= 0) {
        /* The fuzzed connection was adopted second, over max_connections 1: refused with the
         * one "busy" answer, whatever it sent. */
        if (r.total != ctx->cache.busy->len || memcmp(r.head, "HTTP/1.1 503", 12) != 0)
            die("a connection over max_connections got something else than the busy answer");
        close(extra);
    }

    close(client);
    for (int i = 0; ctx->server.n_active > 0; i++) {
        if (i == TURNS_AFTER_CLOSE)
            die("server did not close a connection whose peer had closed");
        uv_run(&ctx->loop, UV_RUN_NOWAIT);
    }
    return 0;
}
