/* fuzz_tcp_answer.c - libFuzzer target for the tcp:// check's answer matching
 * (src/checks/check_tcp.c: expect / expect_hex alternatives): arbitrary bytes from a "target",
 * across split reads.
 *
 * Probes are set up once with ha_probe_init() for a few check configs (one text expect, two
 * one-byte alternatives, alternatives that are prefixes of each other, a hex expect with a NUL,
 * a long expect). Per input, one probe is armed the way ha_probe_start() arms it, without a
 * socket; the bytes are fed in chunks through ha_probe_deliver, then EOF if no verdict came.
 *
 * Control byte (first input byte):
 *   bits 0-2  which check config (mod N_VARIANTS)
 *   bits 3-4  chunking: whole / 1-byte / 1-16 / 1-600 byte chunks
 *   bits 5-7  seed of the chunk-size generator
 *
 * Invariants (abort() = a crash libFuzzer reports):
 *   - done is called exactly once per attempt, after the attempt is over, with a non-empty
 *     reason that is valid UTF-8;
 *   - a pass means the bytes fed start with one of the alternatives, and a fail that is not
 *     about a closed connection means they start with none of them. */
#include "healthagg/check.h"
#include "healthagg/config.h"
#include "healthagg/quote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_VARIANTS 5

static uv_loop_t loop;
static ha_config config;
static ha_probe probes[N_VARIANTS];
static int done_calls;
static ha_result last;

static const char config_json[] =
    "{\"defaults\": {\"interval\": \"1h\", \"timeout\": \"1s\"}, \"checks\": ["
    "  {\"name\": \"redis\", \"url\": \"tcp://127.0.0.1:1\", \"send\": \"PING\\r\\n\","
    "   \"expect\": \"+PONG\"},"
    "  {\"name\": \"pg\", \"url\": \"tcp://127.0.0.1:1\", \"send_hex\": \"0000000804d2162f\","
    "   \"expect\": [\"S\", \"N\"]},"
    "  {\"name\": \"prefixes\", \"url\": \"tcp://127.0.0.1:1\","
    "   \"expect\": [\"+OK\\r\\n+PONG\", \"+OK\", \"-ERR\", \"\\u00e9t\\u00e9\"]},"
    "  {\"name\": \"hex\", \"url\": \"tcp://[::1]:1\", \"expect_hex\": [\"00 ff 00\", \"0a\"],"
    "   \"max_response_bytes\": 3},"
    "  {\"name\": \"long\", \"url\": \"tcp://127.0.0.1:1\","
    "   \"expect\": \"220 a banner longer than the part of the answer kept for reasons, so the "
    "buffer is sized by the expect and not by what a reason shows, which is ninety-six bytes\"}"
    "]}";

/* The alternatives, mirrored from the config, to judge the verdicts independently. */
static const struct {
    const char *alt[4];
    size_t len[4];
    size_t n;
} want[N_VARIANTS] = {
    {{"+PONG"}, {5}, 1},
    {{"S", "N"}, {1, 1}, 2},
    {{"+OK\r\n+PONG", "+OK", "-ERR", "\xc3\xa9t\xc3\xa9"}, {11, 3, 4, 5}, 4},
    {{"\x00\xff\x00", "\x0a"}, {3, 1}, 2},
    {{NULL}, {0}, 1}, /* filled from the config at start */
};
static const char *long_expect;
static size_t long_len;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_tcp_answer: %s\n", what);
    abort();
}

static void on_done(ha_probe *p, const ha_result *r)
{
    done_calls++;
    if (p->running)
        die("done called while the attempt is still marked running");
    if (memchr(r->reason, '\0', sizeof(r->reason)) == NULL || r->reason[0] == '\0')
        die("empty or unterminated reason");
    if (ha_utf8_invalid_at(r->reason, strlen(r->reason)) != strlen(r->reason))
        die("a reason that is not valid UTF-8");
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
        fprintf(stderr, "fuzz_tcp_answer: config: %s\n", err);
        abort();
    }
    if (config.n_checks != N_VARIANTS)
        die("expected one check per variant");
    long_expect = strstr(config_json, "220 a banner");
    long_len = (size_t)(strchr(long_expect, '"') - long_expect);
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

/* Whether the `fed` bytes start with an alternative of variant v. */
static bool starts_with_one(size_t v, const uint8_t *fed, size_t n)
{
    for (size_t i = 0; i < want[v].n; i++) {
        const char *a = v == 4 ? long_expect : want[v].alt[i];
        size_t l = v == 4 ? long_len : want[v].len[i];
        if (n >= l && memcmp(fed, a, l) == 0)
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    data++;
    size--;
    size_t v = ctl % N_VARIANTS;
    ha_probe *p = &probes[v];
    unsigned chunking = (ctl >> 3) & 3, rng = ctl >> 5;

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
        ha_probe_deliver(p, (const char *)data + off, n);
        off += n;
        if (done_calls > 1)
            die("done called more than once");
        if (done_calls == 1 && p->running)
            die("done called but the probe is still running");
        if (done_calls == 0 && !p->running)
            die("the attempt ended without calling done");
    }
    bool eof = p->running;
    if (p->running)
        ha_probe_deliver_eof(p);
    if (p->running)
        die("the attempt is still running after EOF");
    if (done_calls != 1)
        die("done must be called exactly once per attempt");
    bool match = starts_with_one(v, data, off);
    if (last.ok && !match)
        die("passed, but the answer starts with no alternative");
    if (!last.ok && match)
        die("failed, but the answer starts with an alternative");
    if (!last.ok && !eof && strncmp(last.reason, "expected ", 9) != 0)
        die("a mismatch before EOF must say what was expected");
    return 0;
}
