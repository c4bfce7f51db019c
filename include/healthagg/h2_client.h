/* h2_client.h - one HTTP/2 request over a byte stream someone else carries (nghttp2).
 *
 * The client never touches a socket: bytes from the peer go in through ha_h2_client_recv(),
 * bytes for the peer come out through the `send` callback (the probe engine's ha_probe_send, so
 * plain TCP or TLS under it makes no difference here). It speaks HTTP/2 with prior knowledge
 * (h2c, or h2 after ALPN), sends one request with a body and reports the response's header
 * fields, DATA and trailer fields through callbacks; the end is DONE (the stream ended cleanly)
 * or FAILED with a one-line reason: GOAWAY, RST_STREAM, a protocol error, too many bytes, or
 * the connection closing early. */
#ifndef HEALTHAGG_H2_CLIENT_H
#define HEALTHAGG_H2_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes accepted from the peer per request unless the caller sets another bound. */
#define HA_H2_DEFAULT_MAX_INPUT 65536
/* Header and trailer fields (names + values) accepted per response. */
#define HA_H2_MAX_HEADER_BYTES 16384

typedef enum {
    HA_H2_HEADERS,  /* the response's (final) header block */
    HA_H2_TRAILERS, /* the trailing header block */
} ha_h2_block;

typedef struct ha_h2_callbacks {
    /* Bytes for the peer; the buffer is only valid during the call. Returns 0 or -1. */
    int (*send)(void *ud, const char *data, size_t len);
    /* One response field (pseudo-headers included), NUL-terminated. Returns 0, or -1 after
     * calling ha_h2_client_fail() to end the request. */
    int (*on_header)(void *ud, ha_h2_block block, const char *name, size_t name_len,
                     const char *value, size_t value_len);
    /* Response DATA (padding removed). Returns 0, or -1 after ha_h2_client_fail(). */
    int (*on_data)(void *ud, const uint8_t *data, size_t len);
} ha_h2_callbacks;

typedef struct ha_h2_field {
    const char *name, *value; /* lower-case names; values NUL-terminated */
} ha_h2_field;

typedef struct ha_h2_request {
    const char *method, *scheme, *authority, *path;
    const ha_h2_field *fields; /* extra request header fields */
    size_t nfields;
    const uint8_t *body; /* must stay valid until the request ends */
    size_t body_len;
} ha_h2_request;

typedef enum {
    HA_H2_RUNNING, /* more bytes needed */
    HA_H2_DONE,    /* the response ended cleanly (END_STREAM) */
    HA_H2_FAILED,  /* see `error` and `reason` */
} ha_h2_state;

typedef enum {
    HA_H2_ERR_NONE,
    HA_H2_ERR_PROTOCOL,   /* the peer broke HTTP/2 (or is not speaking it) */
    HA_H2_ERR_GOAWAY,     /* the peer sent GOAWAY and our request will not complete */
    HA_H2_ERR_RST_STREAM, /* the peer reset our stream */
    HA_H2_ERR_TOO_BIG,    /* more than max_input bytes, or headers over HA_H2_MAX_HEADER_BYTES */
    HA_H2_ERR_EOF,        /* the connection closed before the response ended */
    HA_H2_ERR_LOCAL,      /* out of memory, or `send` failed */
    HA_H2_ERR_CALLER,     /* a callback rejected the response (ha_h2_client_fail) */
} ha_h2_error;

/* nghttp2's allocations for one request come from this arena (bump allocation, reset per
 * request); what does not fit falls back to malloc. */
#define HA_H2_ARENA_BYTES 32768

typedef struct ha_h2_arena {
    uint8_t *base;     /* caller-owned, HA_H2_ARENA_BYTES; NULL: plain malloc */
    size_t used, last; /* bytes in use; offset of the last block (for in-place free/realloc) */
    size_t fallbacks;  /* allocations that did not fit (for tests and tuning) */
} ha_h2_arena;

typedef struct ha_h2_client {
    struct nghttp2_session *session; /* owned, NULL when no request is active */
    ha_h2_arena arena;
    const ha_h2_callbacks *cb;
    void *ud;
    const uint8_t *body;
    size_t body_len, body_off;
    int32_t stream_id;
    size_t max_input; /* bytes accepted from the peer (0: HA_H2_DEFAULT_MAX_INPUT) */
    size_t input, header_bytes;
    int status; /* :status of the final response, 0 until seen */
    int block;  /* kind of the header block being received */
    bool end_stream, headers_seen, trailers_seen, goaway, rst;
    uint32_t goaway_code, rst_code;
    int32_t goaway_last_stream;
    ha_h2_state state;
    ha_h2_error error;
    char reason[200];
} ha_h2_client;

/* Starts a session and sends the connection preface, SETTINGS and the request. `c` must be
 * zeroed or closed; `c->max_input` and `c->arena.base` (HA_H2_ARENA_BYTES of memory that
 * outlives the request) may be set before. Returns 0, or -1 (FAILED, reason set).
 * Either way ha_h2_client_close() releases the session. */
int ha_h2_client_start(ha_h2_client *c, const ha_h2_callbacks *cb, void *ud,
                       const ha_h2_request *req);
/* Feeds bytes from the peer; answers what they call for (SETTINGS ACK, WINDOW_UPDATE, PING). */
ha_h2_state ha_h2_client_recv(ha_h2_client *c, const char *data, size_t len);
/* The connection closed: FAILED unless the response had already ended. */
ha_h2_state ha_h2_client_eof(ha_h2_client *c);
/* For callbacks: ends the request as FAILED (HA_H2_ERR_CALLER) with this reason. */
void ha_h2_client_fail(ha_h2_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the session; `c` can be started again. */
void ha_h2_client_close(ha_h2_client *c);
/* "NO_ERROR", "PROTOCOL_ERROR", ...; "unknown error code" beyond the RFC's list. */
const char *ha_h2_error_code_name(uint32_t code);

#endif
