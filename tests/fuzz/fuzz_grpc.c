/* fuzz_grpc.c - libFuzzer target for the gRPC check's response path: arbitrary bytes from a
 * "server" go through nghttp2 (src/checks/h2_client.c) into the gRPC layer (grpc_call.c:
 * headers, trailers, grpc-message decoding, deframing, the HealthCheckResponse decoder).
 *
 * Per input, one call is started exactly as the check starts it (preface, SETTINGS, the
 * request with metadata), the bytes are fed in chunks, and EOF follows unless a verdict came
 * first. The seeds (tests/fuzz/corpus/fuzz_grpc/, written by unit.grpc_call with
 * HA_DUMP_SEEDS=DIR) begin with a valid server preface, so the fuzzer starts deep.
 *
 * Control byte (first input byte):
 *   bits 0-1  chunking: whole / 1-byte / 1-16 / 1-600 byte chunks
 *   bit  2    the service asked for: "" or "pkg.Svc"; nghttp2's memory from malloc or the arena
 *   bits 3-7  seed of the chunk-size generator
 *
 * Invariants (abort() = a crash libFuzzer reports):
 *   - after EOF there is always a verdict, with a non-empty, terminated, printable reason;
 *   - a pass is exactly the reason "SERVING" with serving_status 1;
 *   - the bytes the client sends stay within a small bound (it answers, it never amplifies). */
#include "healthagg/grpc_call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t sent;

static void die(const char *what, const char *reason)
{
    fprintf(stderr, "fuzz_grpc: %s (reason \"%s\")\n", what, reason ? reason : "");
    abort();
}

static int count_send(void *ud, const char *data, size_t len)
{
    (void)ud;
    (void)data;
    sent += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t control = data[0];
    data++;
    size--;
    static const ha_h2_field meta[] = {{"authorization", "Bearer fuzz"}};
    static uint8_t arena[HA_H2_ARENA_BYTES];
    static ha_grpc_call g;
    const ha_grpc_call_params prm = {.scheme = "http",
                                     .authority = "127.0.0.1:50051",
                                     .service = (control & 4) ? "pkg.Svc" : "",
                                     .metadata = meta,
                                     .nmetadata = 1,
                                     .arena = (control & 4) ? arena : NULL,
                                     .send = count_send,
                                     .ud = NULL};
    sent = 0;
    if (ha_grpc_call_start(&g, &prm) != 0)
        die("start failed", g.reason);
    uint32_t rng = (uint32_t)(control >> 3) * 2654435761u + 1;
    size_t off = 0;
    while (off < size && !g.done) {
        size_t n;
        switch (control & 3) {
        case 0:
            n = size - off;
            break;
        case 1:
            n = 1;
            break;
        default:
            rng = rng * 1103515245u + 12345u;
            n = 1 + (rng >> 16) % ((control & 3) == 2 ? 16 : 600);
            break;
        }
        if (n > size - off)
            n = size - off;
        ha_grpc_call_recv(&g, (const char *)data + off, n);
        off += n;
    }
    if (!g.done)
        ha_grpc_call_eof(&g);
    if (!g.done)
        die("no verdict after EOF", NULL);
    size_t rl = strnlen(g.reason, sizeof(g.reason));
    if (rl == 0 || rl == sizeof(g.reason))
        die("empty or unterminated reason", NULL);
    for (size_t i = 0; i < rl; i++)
        if ((unsigned char)g.reason[i] < 0x20 || g.reason[i] == 0x7f)
            die("control character in the reason", g.reason);
    if (g.ok && (strcmp(g.reason, "SERVING") != 0 || g.serving_status != 1))
        die("a pass that is not SERVING", g.reason);
    /* Preface + SETTINGS + request, then at most an ACK or WINDOW_UPDATE per few input bytes. */
    if (sent > 4096 + 2 * size)
        die("the client sent far more than it was sent", g.reason);
    ha_grpc_call_close(&g);
    return 0;
}
