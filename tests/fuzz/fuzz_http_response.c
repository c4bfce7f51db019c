/* fuzz_http_response.c - libFuzzer target for the HTTP check's response handling
 * (src/check_http.c): arbitrary bytes from a "target", across split reads.
 *
 * Probes are set up once with ha_probe_init() for a few check configs (GET with the default
 * status rule, HEAD, expect_body + expect_body_regex + expect_json + a header with a small
 * max_response_bytes (the kept body at its cap; a reason never shows the header's value), a
 * self-overlapping expect_body for the KMP table). Per input, one probe is armed the way
 * ha_probe_start() arms it (running, bytes_read = 0, the type's reset) but without a socket; the
 * bytes are fed in chunks through ha_probe_deliver (what the plain transport does with what the
 * socket read), and ha_probe_deliver_eof is called if no verdict was reached.
 *
 * Control byte (first input byte):
 *   bits 0-1  which check config
 *   bits 2-3  chunking: whole / 1-byte / 1-16 / 1-600 byte chunks
 *   bits 4-7  seed of the chunk-size generator
 *
 * Invariants (abort() = a crash libFuzzer reports):
 *   - done is called exactly once per attempt, and only after the attempt is over;
 *   - after EOF the attempt is always over;
 *   - no bytes are fed after the verdict;
 *   - a passing result has an expected status, and every reason is a non-empty string. */
#include "healthagg/check.h"
#include "healthagg/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_VARIANTS 4

static uv_loop_t loop;
static ha_config config;
static ha_probe probes[N_VARIANTS];
static int done_calls;
static ha_result last;

static const char config_json[] =
    "{\"checks\": ["
    "  {\"name\": \"get\", \"url\": \"http://127.0.0.1:1/healthz\", \"interval\": \"1h\","
    "   \"timeout\": \"1s\"},"
    "  {\"name\": \"head\", \"url\": \"http://127.0.0.1:1/\", \"interval\": \"1h\","
    "   \"timeout\": \"1s\", \"method\": \"HEAD\", \"expect_status\": [\"2xx\", 304]},"
    "  {\"name\": \"body\", \"url\": \"http://127.0.0.1:1/ready?x=1\", \"interval\": \"1h\","
    "   \"timeout\": \"1s\", \"expect_body\": \"\\\"status\\\":\\\"ok\\\"\","
    "   \"max_response_bytes\": 256, \"expect_status\": [\"200-299\", 418],"
    "   \"expect_body_regex\": \"^[{ ]*\\\"status\\\"\", \"expect_json\": ["
    "   {\"path\": \"$.status\", \"equals\": \"ok\"}, {\"path\": \"$.n[-1]\", \"lt\": 5}],"
    "   \"headers\": {\"X-Token\": \"tok-secret\"}},"
    "  {\"name\": \"kmp\", \"url\": \"http://[::1]:8080/\", \"interval\": \"1h\","
    "   \"timeout\": \"1s\", \"expect_body\": \"aabaabaaa\", \"max_response_bytes\": 1024}"
    "]}";

static void die(const char *what)
{
    fprintf(stderr, "fuzz_http_response: %s\n", what);
    abort();
}

static void on_done(ha_probe *p, const ha_result *r)
{
    done_calls++;
    if (p->running)
        die("done called while the attempt is still marked running");
    if (memchr(r->reason, '\0', sizeof(r->reason)) == NULL || r->reason[0] == '\0')
        die("empty or unterminated reason");
    if (p == &probes[2] && strstr(r->reason, "tok-secret"))
        die("a header value in a reason");
    /* The variants' expect_status lists, mirrored: GET 200-399, HEAD 2xx/304, body 200-299/418,
     * kmp 200-399. */
    static const int lo[N_VARIANTS][2] = {{200, 200}, {200, 304}, {200, 418}, {200, 200}};
    static const int hi[N_VARIANTS][2] = {{399, 399}, {299, 304}, {299, 418}, {399, 399}};
    size_t v = (size_t)(p - probes);
    int st = r->http_status;
    if (r->ok && !((st >= lo[v][0] && st <= hi[v][0]) || (st >= lo[v][1] && st <= hi[v][1])))
        die("a passing result with a status outside expect_status");
    last = *r;
}

static void teardown(void)
{
    for (size_t i = 0; i < N_VARIANTS; i++)
        ha_probe_close(&probes[i]);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < N_VARIANTS; i++)
        ha_probe_free(&probes[i]);
    if (uv_loop_close(&loop) != 0)
        die("loop still has open handles at teardown");
    ha_config_free(&config);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[HA_ERR_MAX * 2];
    if (uv_loop_init(&loop) != 0)
        die("uv_loop_init");
    if (ha_config_parse_json(config_json, sizeof(config_json) - 1, "fuzz", &config, err,
                             sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_http_response: config: %s\n", err);
        abort();
    }
    if (config.n_checks != N_VARIANTS)
        die("expected one check per variant");
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (ha_probe_init(&probes[i], &loop, NULL, &config.checks[i], on_done, NULL) != 0)
            die("ha_probe_init");
    atexit(teardown);
    return 0;
}

static size_t next_size(unsigned *rng, unsigned mode)
{
    *rng = *rng * 1103515245u + 12345u;
    unsigned x = (*rng >> 16) & 0x7fff;
    switch (mode) {
    case 1:
        return 1;
    case 2:
        return 1 + x % 16;
    case 3:
        return 1 + x % 600;
    }
    return (size_t)-1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    data++;
    size--;
    ha_probe *p = &probes[ctl % N_VARIANTS];
    unsigned chunking = (ctl >> 2) & 3, rng = ctl >> 4;

    /* What ha_probe_start() does before connecting. */
    p->generation++;
    p->running = true;
    p->start_ns = uv_hrtime();
    p->bytes_read = 0;
    p->close_reset = false;
    p->phase = HA_PHASE_WAITING;
    p->type->reset(p);
    done_calls = 0;

    size_t off = 0;
    while (off < size && p->running) {
        size_t n = next_size(&rng, chunking);
        if (n > size - off)
            n = size - off;
        /* The plain transport hands each read over unchanged. */
        ha_probe_deliver(p, (const char *)data + off, n);
        off += n;
        if (done_calls > 1)
            die("done called more than once");
        if (done_calls == 1 && p->running)
            die("done called but the probe is still running");
        if (done_calls == 0 && !p->running)
            die("the attempt ended without calling done");
    }
    if (p->running)
        ha_probe_deliver_eof(p);
    if (p->running)
        die("the attempt is still running after EOF");
    if (done_calls != 1)
        die("done must be called exactly once per attempt");
    if (p->bytes_read > (uint64_t)size)
        die("bytes_read counts more than was fed");
    return 0;
}
