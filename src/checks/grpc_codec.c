/* grpc_codec.c - hand-written encode/decode of the two tiny gRPC health messages and the
 * gRPC wire details around them (framing, status codes, grpc-message escaping).
 *
 * Trade-off: no protobuf library. The request is one optional string field and the response
 * one enum field, so a generic protobuf runtime would be most of the code and none of the
 * value. The decoder still follows the protobuf wire rules (unknown fields skipped, last value
 * wins, bounded varints, length-delimited fields checked against what is left) so that a newer
 * server adding fields keeps working, and it rejects anything malformed with a reason instead
 * of guessing. The deframer accepts exactly one uncompressed message of at most
 * HA_GRPC_MESSAGE_MAX bytes: we never offer compression, and a unary call has one answer. */
#include "healthagg/grpc_codec.h"
#include "healthagg/quote.h"

#include <stdio.h>
#include <string.h>

size_t ha_grpc_encode_request(const char *service, size_t service_len, uint8_t *out, size_t cap)
{
    if (service_len > HA_GRPC_SERVICE_MAX)
        return 0;
    /* proto3: an empty string is the default value and is not written at all. */
    size_t body = 0;
    if (service_len > 0)
        body = 1 + (service_len < 128 ? 1 : 2) + service_len;
    if (cap < 5 + body)
        return 0;
    out[0] = 0; /* not compressed */
    out[1] = (uint8_t)(body >> 24);
    out[2] = (uint8_t)(body >> 16);
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    size_t n = 5;
    if (service_len > 0) {
        out[n++] = 0x0a; /* field 1, wire type 2 (length-delimited) */
        if (service_len < 128) {
            out[n++] = (uint8_t)service_len;
        } else {
            out[n++] = (uint8_t)(0x80 | (service_len & 0x7f));
            out[n++] = (uint8_t)(service_len >> 7);
        }
        memcpy(out + n, service, service_len);
        n += service_len;
    }
    return n;
}

void ha_grpc_deframer_reset(ha_grpc_deframer *d)
{
    d->hdr_have = 0;
    d->msg_len = 0;
    d->msg_have = 0;
    d->messages = 0;
}

int ha_grpc_deframe(ha_grpc_deframer *d, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    while (len > 0) {
        if (d->hdr_have < 5) {
            if (d->messages > 0) {
                snprintf(err, errlen, "more than one message in a unary response");
                return -1;
            }
            d->hdr[d->hdr_have++] = *data++;
            len--;
            if (d->hdr_have < 5)
                continue;
            if (d->hdr[0] == 1) {
                snprintf(err, errlen, "compressed message (none was offered)");
                return -1;
            }
            if (d->hdr[0] != 0) {
                snprintf(err, errlen, "message flag byte 0x%02x (expected 0)", d->hdr[0]);
                return -1;
            }
            d->msg_len = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 |
                         (uint32_t)d->hdr[3] << 8 | (uint32_t)d->hdr[4];
            if (d->msg_len > HA_GRPC_MESSAGE_MAX) {
                snprintf(err, errlen, "message of %lu bytes (limit %d)", (unsigned long)d->msg_len,
                         HA_GRPC_MESSAGE_MAX);
                return -1;
            }
            d->msg_have = 0;
        }
        size_t want = d->msg_len - d->msg_have;
        size_t take = len < want ? len : want;
        memcpy(d->msg + d->msg_have, data, take);
        d->msg_have += take;
        data += take;
        len -= take;
        if (d->msg_have == d->msg_len) {
            d->messages++;
            d->hdr_have = 0;
        }
    }
    return 0;
}

int ha_grpc_deframer_finish(const ha_grpc_deframer *d, const uint8_t **msg, size_t *len, char *err,
                            size_t errlen)
{
    if (d->hdr_have > 0) {
        if (d->hdr_have < 5)
            snprintf(err, errlen, "message prefix cut short (%zu of 5 bytes)", d->hdr_have);
        else
            snprintf(err, errlen, "message cut short (%zu of %lu bytes)", d->msg_have,
                     (unsigned long)d->msg_len);
        return -1;
    }
    if (d->messages == 0) {
        snprintf(err, errlen, "no message in the response");
        return -1;
    }
    *msg = d->msg;
    *len = d->msg_len;
    return 0;
}

/* Reads a varint of at most 10 bytes at *pos; -1 if it runs off the end or is longer. */
static int read_varint(const uint8_t *b, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (*pos >= len)
            return -1;
        uint8_t c = b[(*pos)++];
        if (i == 9 && c > 1)
            return -1; /* more than 64 bits */
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int ha_grpc_decode_health_response(const uint8_t *msg, size_t len, int *status, char *err,
                                   size_t errlen)
{
    int st = HA_GRPC_HEALTH_UNKNOWN;
    size_t pos = 0;
    while (pos < len) {
        uint64_t key, v;
        size_t at = pos;
        if (read_varint(msg, len, &pos, &key) != 0) {
            snprintf(err, errlen, "HealthCheckResponse: bad field key at byte %zu", at);
            return -1;
        }
        uint64_t field = key >> 3;
        unsigned wire = (unsigned)(key & 7);
        if (field == 0 || field > 536870911u) {
            snprintf(err, errlen, "HealthCheckResponse: invalid field number at byte %zu", at);
            return -1;
        }
        switch (wire) {
        case 0: /* varint */
            if (read_varint(msg, len, &pos, &v) != 0) {
                snprintf(err, errlen, "HealthCheckResponse: truncated varint at byte %zu", at);
                return -1;
            }
            if (field == 1) {
                /* An enum is an int32 on the wire; out-of-range values are kept as numbers. */
                int32_t e = (int32_t)(uint32_t)v;
                st = e;
            }
            break;
        case 1: /* 64-bit */
            if (len - pos < 8) {
                snprintf(err, errlen, "HealthCheckResponse: truncated field at byte %zu", at);
                return -1;
            }
            pos += 8;
            break;
        case 2: /* length-delimited */
            if (read_varint(msg, len, &pos, &v) != 0 || v > len - pos) {
                snprintf(err, errlen, "HealthCheckResponse: field %llu overruns the message",
                         (unsigned long long)field);
                return -1;
            }
            if (field == 1) {
                snprintf(err, errlen, "HealthCheckResponse: status is not a varint");
                return -1;
            }
            pos += (size_t)v;
            break;
        case 5: /* 32-bit */
            if (len - pos < 4) {
                snprintf(err, errlen, "HealthCheckResponse: truncated field at byte %zu", at);
                return -1;
            }
            pos += 4;
            break;
        default: /* 3/4: groups (not in proto3), 6/7: invalid */
            snprintf(err, errlen, "HealthCheckResponse: unsupported wire type %u at byte %zu", wire,
                     at);
            return -1;
        }
        if (field == 1 && wire != 0) {
            snprintf(err, errlen, "HealthCheckResponse: status is not a varint");
            return -1;
        }
    }
    *status = st;
    return 0;
}

const char *ha_grpc_health_status_name(int status)
{
    static const char *const names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    if (status < 0 || status > 3)
        return NULL;
    return names[status];
}

const char *ha_grpc_status_name(int code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if (code < 0 || code >= (int)(sizeof(names) / sizeof(names[0])))
        return NULL;
    return names[code];
}

int ha_grpc_parse_status(const char *v, size_t len)
{
    if (len == 0 || len > 3)
        return -1;
    int code = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        code = code * 10 + (v[i] - '0');
    }
    return code;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t ha_grpc_percent_decode(const char *in, size_t len, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    /* Decode first (a multi-byte UTF-8 character may arrive as several escapes), then make
     * the bytes printable. Only as much is decoded as could ever be shown. */
    unsigned char dec[1024];
    size_t dn = 0, i = 0;
    while (i < len && dn < sizeof(dec)) {
        int h1, h2;
        if (in[i] == '%' && i + 2 < len && (h1 = hexval(in[i + 1])) >= 0 &&
            (h2 = hexval(in[i + 2])) >= 0) {
            dec[dn++] = (unsigned char)(h1 << 4 | h2);
            i += 3;
        } else {
            dec[dn++] = (unsigned char)in[i++];
        }
    }
    bool cut = i < len;
    size_t room = cap - 1, o = 0, k = 0;
    while (k < dn) {
        size_t n = 1;
        unsigned char c = dec[k];
        if (c >= 0x80) {
            n = ha_utf8_char_len((const char *)dec + k, dn - k);
            if (n == 0) {
                c = '?';
                n = 1;
            }
        } else if (c < 0x20 || c == 0x7f) {
            c = '?';
        }
        if (o + n > room) {
            cut = true;
            break;
        }
        if (n == 1)
            out[o] = (char)c;
        else
            memcpy(out + o, dec + k, n);
        o += n;
        k += n;
    }
    if (cut) {
        /* Make room for "..." without splitting a UTF-8 character. */
        size_t dots = room < 3 ? room : 3;
        if (o + dots > room) {
            o = room - dots;
            while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80)
                o--;
        }
        memcpy(out + o, "...", dots);
        o += dots;
    }
    out[o] = '\0';
    return o;
}
