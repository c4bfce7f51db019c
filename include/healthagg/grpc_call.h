/* grpc_call.h - one grpc.health.v1.Health/Check call over a byte stream, to a verdict.
 *
 * Puts the HTTP/2 client (h2_client.h) and the message codec (grpc_codec.h) together: builds
 * the request (POST /grpc.health.v1.Health/Check, te: trailers, application/grpc, the check's
 * metadata), follows the response's headers, message and trailers, and ends with `ok` and a
 * one-line reason: "SERVING", "NOT_SERVING", "grpc-status 12 (UNIMPLEMENTED): ...", "GOAWAY
 * (...)", "RST_STREAM (...)", "invalid response: ...", "connection closed before ...". No
 * socket, no timer: the probe engine (check_grpc.c) carries the bytes and owns the deadline,
 * and the fuzzer drives it directly. */
#ifndef HEALTHAGG_GRPC_CALL_H
#define HEALTHAGG_GRPC_CALL_H

#include "healthagg/grpc_codec.h"
#include "healthagg/h2_client.h"

/* A grpc-message is kept up to this many bytes (still percent-encoded). */
#define HA_GRPC_MESSAGE_TEXT_MAX 512

typedef struct ha_grpc_call_params {
    const char *scheme;    /* :scheme, "http" (grpc://) or "https" (grpcs://) */
    const char *authority; /* :authority, e.g. "127.0.0.1:50051" */
    const char *service;   /* "" asks for the server as a whole */
    const ha_h2_field *metadata;
    size_t nmetadata;
    /* Optional: HA_H2_ARENA_BYTES of memory, outliving the call, for nghttp2's allocations. */
    uint8_t *arena;
    /* Bytes for the peer (ha_probe_send); 0 or -1. */
    int (*send)(void *ud, const char *data, size_t len);
    void *ud;
} ha_grpc_call_params;

typedef struct ha_grpc_call {
    ha_h2_client h2;
    ha_grpc_deframer deframer;
    uint8_t request[HA_GRPC_REQUEST_MAX];
    size_t request_len;
    int (*send)(void *ud, const char *data, size_t len);
    void *ud;
    /* What the response said so far. */
    bool content_type_seen, content_type_ok;
    int grpc_status; /* -1: none yet; -2: present but not a status code */
    char grpc_status_text[8];
    char grpc_message[HA_GRPC_MESSAGE_TEXT_MAX + 1];
    size_t grpc_message_len;
    /* The verdict, once `done`. */
    bool done, ok;
    bool local_error;   /* healthagg's own trouble (memory, sending): inconclusive */
    int serving_status; /* the HealthCheckResponse status, -1 if none was decoded */
    char reason[256];
} ha_grpc_call;

/* Sends the connection preface, SETTINGS and the request. Returns 0, or -1 with the call
 * already `done` (reason set). Either way ha_grpc_call_close() releases it. */
int ha_grpc_call_start(ha_grpc_call *g, const ha_grpc_call_params *prm);
/* Bytes from the peer. Returns true once the verdict is in (`done`). */
bool ha_grpc_call_recv(ha_grpc_call *g, const char *data, size_t len);
/* The connection closed; always leaves a verdict. */
void ha_grpc_call_eof(ha_grpc_call *g);
void ha_grpc_call_close(ha_grpc_call *g);

#endif
