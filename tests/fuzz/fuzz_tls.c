/* fuzz_tls.c - libFuzzer target for the TLS client byte pipe (src/checks/tls.c): hostile server
 * bytes fed into a connection that has just sent its ClientHello.
 *
 * One ha_tls (insecure_skip_verify, so the chain is still parsed and verified but a failure is not
 * fatal, and the ALPN "http/1.1") is built once; per input, ha_tls_begin() starts a connection,
 * ha_tls_drive(NULL, 0) sends the ClientHello (discarded), the input is fed in chunks, then
 * ha_tls_write() if the handshake completed, then ha_tls_eof(). Keys depend on the client's random
 * numbers, so what is reached is the record layer, ServerHello / HelloRetryRequest parsing, the
 * TLS 1.2 plaintext Certificate (X.509 and PEM-free DER parsing), ServerKeyExchange, alerts, and
 * the non-TLS answer detection - the code a hostile server reaches before any key is shared.
 *
 * Control byte (first input byte): bits 0-1 chunking (whole / 1-byte / 1-16 / 1-600 bytes),
 * bits 2-7 seed of the chunk-size generator.
 *
 * Invariants (abort() = a crash libFuzzer reports): a failed connection has a non-empty reason
 * starting with "tls: "; after EOF the connection is never still handshaking. */
#include "healthagg/tls.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ha_tls *tls;
static size_t delivered;

static int discard(void *ctx, const unsigned char *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

static int deliver(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    (void)data;
    delivered += len;
    return 0;
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_tls: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ha_tls_options o;
    memset(&o, 0, sizeof(o));
    o.insecure_skip_verify = true;
    o.min_version = 12;
    char err[512];
    if (ha_tls_new(&tls, &o, "localhost", "http/1.1", err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_tls: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned control = data[0];
    data++;
    size--;
    ha_tls_io io = {.ctx = NULL, .send_raw = discard, .deliver = deliver};
    if (ha_tls_begin(tls, &io) != 0)
        die("begin failed");
    ha_tls_status st = ha_tls_drive(tls, NULL, 0);
    uint32_t rng = control >> 2 | 1u << 8;
    size_t off = 0;
    while (off < size && (st == HA_TLS_HANDSHAKING || st == HA_TLS_OPEN)) {
        size_t n = size - off;
        rng = rng * 1103515245u + 12345u;
        switch (control & 3) {
        case 1:
            n = 1;
            break;
        case 2:
            n = 1 + (rng >> 16) % 16;
            break;
        case 3:
            n = 1 + (rng >> 16) % 600;
            break;
        default:
            break;
        }
        if (n > size - off)
            n = size - off;
        st = ha_tls_drive(tls, (const char *)data + off, n);
        off += n;
        if (st == HA_TLS_OPEN && ha_tls_write(tls, "GET / HTTP/1.1\r\n\r\n", 18) != 0)
            st = ha_tls_status_of(tls);
    }
    ha_tls_eof(tls);
    st = ha_tls_status_of(tls);
    if (st == HA_TLS_HANDSHAKING)
        die("still handshaking after EOF");
    if (st == HA_TLS_FAILED && strncmp(ha_tls_reason(tls), "tls: ", 5) != 0)
        die("a failure without a tls: reason");
    return 0;
}
