/* tls.h - a TLS client as a byte pipe (Mbed TLS 3.6), for https:// and grpcs:// checks.
 *
 * No sockets here: raw bytes from the target go in with ha_tls_drive(), raw bytes for the target
 * come out through the `send_raw` callback, plaintext comes out through `deliver`. The probe
 * engine's TLS transport (src/checks/transport_tls.c) wires it to the probe; the fuzz target
 * feeds it hostile bytes directly.
 *
 * One ha_tls per check, reused across probes: the Mbed TLS configuration, the parsed trust store
 * and client key are built once, the connection context is reset for each attempt (its record
 * buffers are kept), and the session ticket of the last good handshake is offered again so
 * steady-state probes resume instead of repeating the full handshake. */
#ifndef HEALTHAGG_TLS_H
#define HEALTHAGG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HA_TLS_PATH_MAX 512
#define HA_TLS_NAME_MAX 254
/* Debian's (and most distributions') bundle of the system's trusted roots. */
#define HA_TLS_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* A check's `tls` object, parsed (config owns it). Empty strings mean "not set". */
typedef struct ha_tls_options {
    char ca_file[HA_TLS_PATH_MAX];     /* "" = the system trust store */
    char server_name[HA_TLS_NAME_MAX]; /* SNI and the verified name; "" = the URL host */
    char client_cert[HA_TLS_PATH_MAX]; /* mTLS: PEM chain ... */
    char client_key[HA_TLS_PATH_MAX];  /* ... and its unencrypted PEM key */
    bool insecure_skip_verify;
    uint8_t min_version;          /* 12 or 13 */
    uint64_t warn_cert_expiry_ms; /* 0 = no warning */
} ha_tls_options;

typedef struct ha_tls ha_tls;

/* Where the bytes go. `send_raw` must take every byte (copying what it cannot send at once) and
 * return 0, or return -1 to abort; `deliver` receives decrypted application data. */
typedef struct ha_tls_io {
    void *ctx;
    int (*send_raw)(void *ctx, const unsigned char *data, size_t len);
    int (*deliver)(void *ctx, const char *data, size_t len); /* nonzero: stop reading */
} ha_tls_io;

typedef enum {
    HA_TLS_HANDSHAKING, /* needs more bytes from the target */
    HA_TLS_OPEN,        /* handshake done: plaintext flows both ways */
    HA_TLS_CLOSED,      /* the target sent close_notify */
    HA_TLS_FAILED,      /* see ha_tls_reason() */
} ha_tls_status;

/* What one connection established, for results and logs. */
typedef struct ha_tls_info {
    bool resumed;                /* the session was resumed (no certificate exchanged) */
    int64_t not_after;           /* the peer certificate's notAfter (Unix seconds); 0 = unknown */
    const char *version;         /* "TLSv1.3" */
    const char *alpn;            /* negotiated protocol or NULL */
    unsigned full_handshakes;    /* over this ha_tls's life */
    unsigned resumed_handshakes; /* over this ha_tls's life */
} ha_tls_info;

/* Validates `o` as a config check would (files exist and parse, a trust store exists unless
 * verification is off): 0, or -1 with "key: problem; fix" in err (the caller adds the path). */
int ha_tls_options_check(const ha_tls_options *o, char *err, size_t errlen);

/* Builds the client for a check. `host` is the URL host (the default server name); `alpn` is
 * "h2", "http/1.1" or NULL. Returns 0, or -1 with the reason in err. */
int ha_tls_new(ha_tls **out, const ha_tls_options *o, const char *host, const char *alpn, char *err,
               size_t errlen);
void ha_tls_free(ha_tls *t);

/* Starts a new connection attempt (the previous one, if any, is forgotten; its session kept). */
int ha_tls_begin(ha_tls *t, const ha_tls_io *io);
/* Feeds raw bytes (possibly none: just to start the handshake) and runs the state machine as
 * far as it goes: handshake messages are sent, plaintext delivered. */
ha_tls_status ha_tls_drive(ha_tls *t, const char *data, size_t len);
/* Encrypts plaintext and sends it (only once OPEN). 0, or -1 with the reason set. */
int ha_tls_write(ha_tls *t, const char *data, size_t len);
/* The target closed the TCP connection: the reason names the phase. */
void ha_tls_eof(ha_tls *t);
ha_tls_status ha_tls_status_of(const ha_tls *t);
/* One line: "certificate verify failed: expired (notAfter 2026-01-01T00:00:00Z)". */
const char *ha_tls_reason(const ha_tls *t);
void ha_tls_get_info(const ha_tls *t, ha_tls_info *out);

/* "2026-01-01T00:00:00Z" */
void ha_tls_format_time(int64_t unix_seconds, char *buf, size_t len);

#endif
