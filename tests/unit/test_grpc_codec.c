/* test_grpc_codec.c - the hand-written gRPC health messages: request encoding (checked byte by
 * byte against the protobuf wire format), the response deframer's bounds, the decoder's
 * handling of unknown and malformed fields, status names and grpc-message percent-decoding. */
#include "healthagg/grpc_codec.h"
#include "unit.h"

#include <stdint.h>

static void test_encode(void)
{
    uint8_t buf[HA_GRPC_REQUEST_MAX];
    /* Empty service: proto3 writes nothing, the message is empty. */
    size_t n = ha_grpc_encode_request("", 0, buf, sizeof(buf));
    CHECK(n == 5);
    CHECK(memcmp(buf, "\0\0\0\0\0", 5) == 0);

    n = ha_grpc_encode_request("pkg.Svc", 7, buf, sizeof(buf));
    const uint8_t want[] = {0, 0, 0, 0, 9, 0x0a, 7, 'p', 'k', 'g', '.', 'S', 'v', 'c'};
    CHECK(n == sizeof(want));
    CHECK(memcmp(buf, want, sizeof(want)) == 0);

    /* 127 bytes: one-byte length; 128: two-byte varint 0x80 0x01. */
    char name[HA_GRPC_SERVICE_MAX + 1];
    memset(name, 'a', sizeof(name));
    n = ha_grpc_encode_request(name, 127, buf, sizeof(buf));
    CHECK(n == 5 + 2 + 127);
    CHECK(buf[4] == 129 && buf[5] == 0x0a && buf[6] == 127);
    n = ha_grpc_encode_request(name, 128, buf, sizeof(buf));
    CHECK(n == 5 + 3 + 128);
    CHECK(buf[4] == 131 && buf[6] == 0x80 && buf[7] == 0x01 && buf[8] == 'a');
    n = ha_grpc_encode_request(name, HA_GRPC_SERVICE_MAX, buf, sizeof(buf));
    CHECK(n == 5 + 3 + HA_GRPC_SERVICE_MAX);
    CHECK(buf[3] == ((3 + HA_GRPC_SERVICE_MAX) >> 8) &&
          buf[4] == ((3 + HA_GRPC_SERVICE_MAX) & 0xff));
    /* Too long, or a buffer too small: 0, nothing promised. */
    CHECK(ha_grpc_encode_request(name, HA_GRPC_SERVICE_MAX + 1, buf, sizeof(buf)) == 0);
    CHECK(ha_grpc_encode_request("pkg.Svc", 7, buf, 13) == 0);
    CHECK(ha_grpc_encode_request("pkg.Svc", 7, buf, 14) == 14);
}

static int deframe_all(ha_grpc_deframer *d, const uint8_t *b, size_t n, size_t step, char *err,
                       size_t errlen)
{
    ha_grpc_deframer_reset(d);
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        if (ha_grpc_deframe(d, b + i, k, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static void test_deframe(void)
{
    static ha_grpc_deframer d;
    char err[128];
    const uint8_t *msg;
    size_t len;
    const uint8_t serving[] = {0, 0, 0, 0, 2, 0x08, 0x01};
    /* Whole, and byte by byte: the same message. */
    for (size_t step = 1; step <= sizeof(serving); step++) {
        CHECK(deframe_all(&d, serving, sizeof(serving), step, err, sizeof(err)) == 0);
        CHECK(ha_grpc_deframer_finish(&d, &msg, &len, err, sizeof(err)) == 0);
        CHECK(len == 2 && msg[0] == 0x08 && msg[1] == 0x01);
    }
    /* An empty message is a message (status UNKNOWN when decoded). */
    const uint8_t empty[] = {0, 0, 0, 0, 0};
    CHECK(deframe_all(&d, empty, sizeof(empty), 5, err, sizeof(err)) == 0);
    CHECK(ha_grpc_deframer_finish(&d, &msg, &len, err, sizeof(err)) == 0 && len == 0);

    /* No message at all. */
    ha_grpc_deframer_reset(&d);
    CHECK(ha_grpc_deframer_finish(&d, &msg, &len, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "no message");
    /* Cut in the prefix, cut in the body. */
    CHECK(deframe_all(&d, serving, 3, 3, err, sizeof(err)) == 0);
    CHECK(ha_grpc_deframer_finish(&d, &msg, &len, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "prefix cut short (3 of 5");
    CHECK(deframe_all(&d, serving, 6, 6, err, sizeof(err)) == 0);
    CHECK(ha_grpc_deframer_finish(&d, &msg, &len, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "message cut short (1 of 2 bytes)");
    /* Compressed, bad flag, oversized (rejected on the prefix, before any body arrives). */
    const uint8_t compressed[] = {1, 0, 0, 0, 2, 0x08, 0x01};
    CHECK(deframe_all(&d, compressed, sizeof(compressed), 7, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "compressed");
    const uint8_t flag[] = {0x80, 0, 0, 0, 0};
    CHECK(deframe_all(&d, flag, sizeof(flag), 5, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "flag byte 0x80");
    const uint8_t big[] = {0, 0xff, 0xff, 0xff, 0xff};
    CHECK(deframe_all(&d, big, sizeof(big), 5, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "message of 4294967295 bytes (limit 1024)");
    const uint8_t limit[] = {0, 0, 0, 4, 1};
    CHECK(deframe_all(&d, limit, sizeof(limit), 5, err, sizeof(err)) == -1);
    const uint8_t at_limit[] = {0, 0, 0, 4, 0};
    CHECK(deframe_all(&d, at_limit, sizeof(at_limit), 5, err, sizeof(err)) == 0);
    /* A second message, even an empty one. */
    const uint8_t two[] = {0, 0, 0, 0, 2, 0x08, 0x01, 0, 0, 0, 0, 0};
    CHECK(deframe_all(&d, two, sizeof(two), 1, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "more than one message");
}

static int decode(const uint8_t *b, size_t n, int *st, char *err, size_t errlen)
{
    return ha_grpc_decode_health_response(b, n, st, err, errlen);
}

static void test_decode(void)
{
    char err[128];
    int st = -99;
    const uint8_t serving[] = {0x08, 0x01};
    CHECK(decode(serving, 2, &st, err, sizeof(err)) == 0 && st == HA_GRPC_HEALTH_SERVING);
    const uint8_t not_serving[] = {0x08, 0x02};
    CHECK(decode(not_serving, 2, &st, err, sizeof(err)) == 0 && st == HA_GRPC_HEALTH_NOT_SERVING);
    const uint8_t unknown_svc[] = {0x08, 0x03};
    CHECK(decode(unknown_svc, 2, &st, err, sizeof(err)) == 0 &&
          st == HA_GRPC_HEALTH_SERVICE_UNKNOWN);
    /* Empty: proto3 default, UNKNOWN. */
    CHECK(decode(serving, 0, &st, err, sizeof(err)) == 0 && st == HA_GRPC_HEALTH_UNKNOWN);
    /* Last value wins; unknown fields of every wire type are skipped. */
    const uint8_t fields[] = {0x08, 0x02,                                 /* status 2 */
                              0x10, 0x96, 0x01,                           /* 2: varint */
                              0x19, 1,    2,    3,    4,    5,   6, 7, 8, /* 3: fixed64 */
                              0x22, 3,    'a',  'b',  'c',                /* 4: bytes */
                              0x2d, 1,    2,    3,    4,                  /* 5: fixed32 */
                              0x08, 0x01,                                 /* status 1 */
                              0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00};        /* max field */
    CHECK(decode(fields, sizeof(fields), &st, err, sizeof(err)) == 0 && st == 1);
    /* Enum values beyond the known ones stay numbers (a newer server); negatives too. */
    const uint8_t seven[] = {0x08, 0x07};
    CHECK(decode(seven, 2, &st, err, sizeof(err)) == 0 && st == 7);
    const uint8_t neg[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(decode(neg, sizeof(neg), &st, err, sizeof(err)) == 0 && st == -1);
    /* Malformed. */
    const uint8_t trunc_varint[] = {0x08, 0x81};
    CHECK(decode(trunc_varint, 2, &st, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "truncated varint");
    const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x02};
    CHECK(decode(long_varint, sizeof(long_varint), &st, err, sizeof(err)) == -1);
    const uint8_t overrun[] = {0x22, 5, 'a'};
    CHECK(decode(overrun, sizeof(overrun), &st, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "field 4 overruns");
    const uint8_t huge_len[] = {0x22, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    CHECK(decode(huge_len, sizeof(huge_len), &st, err, sizeof(err)) == -1);
    const uint8_t status_bytes[] = {0x0a, 1, 1};
    CHECK(decode(status_bytes, sizeof(status_bytes), &st, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "status is not a varint");
    const uint8_t status_fixed[] = {0x0d, 1, 0, 0, 0};
    CHECK(decode(status_fixed, sizeof(status_fixed), &st, err, sizeof(err)) == -1);
    const uint8_t group[] = {0x0b, 0x0c};
    CHECK(decode(group, sizeof(group), &st, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "wire type 3");
    const uint8_t wt7[] = {0x0f};
    CHECK(decode(wt7, 1, &st, err, sizeof(err)) == -1);
    const uint8_t field0[] = {0x00, 0x01};
    CHECK(decode(field0, 2, &st, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "invalid field number");
    const uint8_t trunc64[] = {0x19, 1, 2};
    CHECK(decode(trunc64, sizeof(trunc64), &st, err, sizeof(err)) == -1);
    const uint8_t trunc32[] = {0x2d, 1};
    CHECK(decode(trunc32, sizeof(trunc32), &st, err, sizeof(err)) == -1);
}

static void test_names(void)
{
    CHECK(strcmp(ha_grpc_health_status_name(0), "UNKNOWN") == 0);
    CHECK(strcmp(ha_grpc_health_status_name(1), "SERVING") == 0);
    CHECK(strcmp(ha_grpc_health_status_name(2), "NOT_SERVING") == 0);
    CHECK(strcmp(ha_grpc_health_status_name(3), "SERVICE_UNKNOWN") == 0);
    CHECK(ha_grpc_health_status_name(4) == NULL && ha_grpc_health_status_name(-1) == NULL);
    CHECK(strcmp(ha_grpc_status_name(0), "OK") == 0);
    CHECK(strcmp(ha_grpc_status_name(5), "NOT_FOUND") == 0);
    CHECK(strcmp(ha_grpc_status_name(12), "UNIMPLEMENTED") == 0);
    CHECK(strcmp(ha_grpc_status_name(14), "UNAVAILABLE") == 0);
    CHECK(strcmp(ha_grpc_status_name(16), "UNAUTHENTICATED") == 0);
    CHECK(ha_grpc_status_name(17) == NULL && ha_grpc_status_name(-1) == NULL);

    CHECK(ha_grpc_parse_status("0", 1) == 0);
    CHECK(ha_grpc_parse_status("12", 2) == 12);
    CHECK(ha_grpc_parse_status("999", 3) == 999);
    CHECK(ha_grpc_parse_status("", 0) == -1);
    CHECK(ha_grpc_parse_status("1000", 4) == -1);
    CHECK(ha_grpc_parse_status("-1", 2) == -1);
    CHECK(ha_grpc_parse_status("1 ", 2) == -1);
    CHECK(ha_grpc_parse_status("0x1", 3) == -1);
}

static void pd(const char *in, size_t cap, const char *want)
{
    char out[1200];
    size_t n = ha_grpc_percent_decode(in, strlen(in), out, cap);
    unit_checks++;
    if (strcmp(out, want) != 0 || n != strlen(want) || n >= cap) {
        unit_failures++;
        fprintf(stderr, "percent_decode(\"%s\", %zu): got \"%s\" (%zu), want \"%s\"\n", in, cap,
                out, n, want);
    }
}

static void test_percent_decode(void)
{
    /* What the reference Node server sends for an unknown service. */
    pd("Health%20status%20unknown%20for%20service%20x", 200, "Health status unknown for service x");
    pd("100%25", 200, "100%");
    pd("%e6%97%a5%E6%9C%AC", 200, "\xe6\x97\xa5\xe6\x9c\xac"); /* UTF-8, any hex case */
    /* Malformed escapes are kept as they are. */
    pd("50%", 200, "50%");
    pd("50%4", 200, "50%4");
    pd("%zz ok", 200, "%zz ok");
    pd("%%41", 200, "%A");
    /* Control characters and invalid UTF-8 become '?'. */
    pd("a%0Ab%00c%7f", 200, "a?b?c?");
    pd("%ff%c0%80%ed%a0%80", 200, "??????");
    pd("%e6%97", 200, "??");
    pd("raw\x01", 200, "raw?");
    /* Cuts: "..." within the buffer, never in the middle of a UTF-8 character. */
    pd("abcdefghij", 8, "abcd...");
    pd("abcdefg", 8, "abcdefg");
    pd("abcdefgh", 8, "abcd...");
    pd("ab%e6%97%a5cdefg", 8, "ab...");
    pd("abc", 3, "..");
    pd("abc", 2, ".");
    pd("abc", 1, "");
    /* Input longer than the decode window is cut too. */
    char longin[3000];
    memset(longin, 'x', sizeof(longin) - 1);
    longin[sizeof(longin) - 1] = '\0';
    char out[1200];
    size_t n = ha_grpc_percent_decode(longin, strlen(longin), out, sizeof(out));
    CHECK(n == 1027 && strcmp(out + 1024, "...") == 0);
    n = ha_grpc_percent_decode("abc", 3, out, 0);
    CHECK(n == 0);
}

int main(void)
{
    test_encode();
    test_deframe();
    test_decode();
    test_names();
    test_percent_decode();
    return unit_report("unit.grpc_codec");
}
