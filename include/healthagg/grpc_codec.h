/* grpc_codec.h - the bytes of a gRPC health check, without any transport: the request message,
 * the length-prefixed framing of the response, the HealthCheckResponse decoder, the names of
 * grpc-status codes and serving statuses, and the percent-decoding of grpc-message.
 *
 * Everything here works on caller-owned fixed buffers (no allocation) and bounds every length
 * it reads, so it can be fed bytes straight from the network and from the fuzzer. */
#ifndef HEALTHAGG_GRPC_CODEC_H
#define HEALTHAGG_GRPC_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The one RPC a health check makes. */
#define HA_GRPC_HEALTH_PATH "/grpc.health.v1.Health/Check"
/* A service name is at most this long (the request stays one small frame). */
#define HA_GRPC_SERVICE_MAX 512
/* Bytes of an encoded request: 5-byte prefix + tag + 2-byte length + the name. */
#define HA_GRPC_REQUEST_MAX (5 + 1 + 2 + HA_GRPC_SERVICE_MAX)
/* The largest response message accepted; a HealthCheckResponse is 2 bytes. */
#define HA_GRPC_MESSAGE_MAX 1024

/* grpc.health.v1.HealthCheckResponse.ServingStatus */
enum {
    HA_GRPC_HEALTH_UNKNOWN = 0,
    HA_GRPC_HEALTH_SERVING = 1,
    HA_GRPC_HEALTH_NOT_SERVING = 2,
    HA_GRPC_HEALTH_SERVICE_UNKNOWN = 3,
};

/* Writes the framed HealthCheckRequest{service} (5-byte gRPC prefix + protobuf) into `out`.
 * Returns its length, or 0 if `service_len` exceeds HA_GRPC_SERVICE_MAX or `cap` is too small. */
size_t ha_grpc_encode_request(const char *service, size_t service_len, uint8_t *out, size_t cap);

/* Incremental reader of a unary response's DATA: length-prefixed messages, exactly one expected. */
typedef struct ha_grpc_deframer {
    uint8_t hdr[5];
    size_t hdr_have;
    uint32_t msg_len;
    size_t msg_have;
    unsigned messages; /* complete messages seen */
    uint8_t msg[HA_GRPC_MESSAGE_MAX];
} ha_grpc_deframer;

void ha_grpc_deframer_reset(ha_grpc_deframer *d);
/* Feeds DATA bytes. Returns 0, or -1 with a reason in `err` (compressed or oversized message,
 * bad flag byte, a second message). */
int ha_grpc_deframe(ha_grpc_deframer *d, const uint8_t *data, size_t len, char *err, size_t errlen);
/* At end of stream: 0 and the one complete message (`*msg`, `*len`), or -1 with a reason (no
 * message, or one cut short). */
int ha_grpc_deframer_finish(const ha_grpc_deframer *d, const uint8_t **msg, size_t *len, char *err,
                            size_t errlen);

/* Decodes a HealthCheckResponse: field 1 (varint) is the status, unknown fields are skipped as
 * protobuf requires, an absent field means UNKNOWN (proto3 default). Returns 0 with `*status`
 * set, or -1 with a reason in `err`. */
int ha_grpc_decode_health_response(const uint8_t *msg, size_t len, int *status, char *err,
                                   size_t errlen);

/* "SERVING", "NOT_SERVING", ...; NULL for a value outside the enum. */
const char *ha_grpc_health_status_name(int status);
/* "OK", "NOT_FOUND", "UNIMPLEMENTED", ...; NULL for a code outside 0-16. */
const char *ha_grpc_status_name(int code);
/* Parses a grpc-status header value (1-3 ASCII digits). Returns the code or -1. */
int ha_grpc_parse_status(const char *v, size_t len);

/* Percent-decodes a grpc-message value into `out` (NUL-terminated, at most `cap` - 1 bytes, "..."
 * marks a cut). Malformed escapes are kept as they are (the gRPC spec says never to fail on them);
 * control characters and invalid UTF-8 become '?', so the result is safe in a log line.
 * Returns the length written. */
size_t ha_grpc_percent_decode(const char *in, size_t len, char *out, size_t cap);

#endif
