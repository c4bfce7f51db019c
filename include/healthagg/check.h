/* check.h - the probe engine: one attempt against one target, reported exactly once.
 *
 * A probe owns its handles (socket, timeout timer) for its whole life and reuses them across
 * attempts, so a steady-state check cycle allocates nothing. The shared part (name
 * resolution, connecting address by address, the deadline, buffered writes, teardown) lives
 * in src/checks/check.c; the bytes on the wire belong to the check's transport (plain TCP,
 * TLS) and what they mean to its type (HTTP, send/expect, ...), both chosen by the URL's
 * scheme through the table in check_type.h. The engine names no type. */
#ifndef HEALTHAGG_CHECK_H
#define HEALTHAGG_CHECK_H

#include "healthagg/check_type.h"
#include "healthagg/config.h"
#include "healthagg/resolve.h"
#include "healthagg/state.h"

#include <uv.h>

typedef void (*ha_probe_done_cb)(ha_probe *p, const ha_result *r);

typedef enum {
    HA_PHASE_IDLE,
    HA_PHASE_RESOLVING,
    HA_PHASE_CONNECTING,
    HA_PHASE_HANDSHAKE, /* connected, the transport is not ready yet (TLS) */
    HA_PHASE_WAITING,   /* request sent, no response byte yet */
    HA_PHASE_READING,   /* response bytes arriving */
} ha_probe_phase;

#define HA_PROBE_RBUF 4096
#define HA_PROBE_TRAIL 160 /* "connect: refused ([::1]:80), then " history of earlier addresses */

/* Bytes waiting for the socket: one buffer being written, one collecting more. */
typedef struct ha_outbuf {
    char *data;
    size_t len, cap;
} ha_outbuf;

struct ha_probe {
    uv_loop_t *loop;
    ha_resolver *resolver;
    const ha_check_config *cfg;
    const ha_check_type *type;
    const ha_transport *transport;
    ha_probe_done_cb done;
    void *data;            /* the owner's */
    void *type_state;      /* owned: the type's per-probe state */
    void *transport_state; /* owned: the transport's per-probe state */

    uv_tcp_t tcp;
    uv_timer_t timer;      /* the attempt's deadline */
    uv_timer_t addr_timer; /* one address's share of the deadline */
    uv_connect_t connect_req;
    uv_write_t write_req;
    ha_outbuf out_busy, out_next; /* being written / queued behind it */
    bool writing;

    ha_lookup lookup;              /* this check's name resolution (at most one in flight) */
    ha_addr_list addrs;            /* addresses of this attempt, in the order they are tried */
    size_t addr_index;             /* the one being tried */
    char target[HA_HOST_MAX + 16]; /* "host:port" of the address in use, for messages */
    char trail[HA_PROBE_TRAIL];    /* why earlier addresses failed */

    ha_probe_phase phase;
    bool running;     /* an attempt is in progress; done() not yet called */
    bool tcp_open;    /* tcp handle initialised and not yet closed */
    bool tcp_closing; /* uv_close issued, callback pending */
    bool addr_timer_open;
    bool shutting_down;
    bool inconclusive;               /* the attempt is ending on a local resource error */
    bool close_reset;                /* end with RST (a complete answer was read: no TIME_WAIT) */
    bool warn;                       /* a passing attempt is degraded (warn_latency, cert expiry) */
    char warn_reason[HA_REASON_MAX]; /* why, appended to a passing verdict's reason */
    int64_t cert_not_after;          /* the TLS peer certificate's notAfter; 0 = none */
    unsigned generation;             /* bumps per attempt; stale async callbacks compare it */
    uint64_t start_ns;
    uint64_t bytes_read; /* plaintext bytes delivered to the type this attempt */
    char rbuf[HA_PROBE_RBUF];
};

/* Prepares a probe for `cfg` (which must outlive it). Returns 0 or a libuv error. */
int ha_probe_init(ha_probe *p, uv_loop_t *loop, ha_resolver *resolver, const ha_check_config *cfg,
                  ha_probe_done_cb done, void *data);
/* Starts one attempt; `done` is called exactly once, possibly before this returns.
 * Returns UV_EBUSY while the previous attempt's socket is still closing. */
int ha_probe_start(ha_probe *p);
/* Stops any attempt without reporting and closes the probe's handles; `done` is not called.
 * The memory may be released once the loop has run the close callbacks. */
void ha_probe_close(ha_probe *p);
/* Releases what ha_probe_init allocated (after the loop has finished closing). */
void ha_probe_free(ha_probe *p);

/* For types and transports: finish the attempt with a verdict (the single exit). */
void ha_probe_finish(ha_probe *p, bool ok, int http_status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* For types and transports: a passing verdict of this attempt is degraded (`warn`); the reason
 * is appended to the verdict's ("HTTP 200; certificate expires in 3d (...)"). */
void ha_probe_warn(ha_probe *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For types: send plaintext through the transport. The buffer may be reused on return. */
void ha_probe_send(ha_probe *p, const char *buf, size_t len);
/* For transports: bytes onto the socket (copied when the socket can't take them at once).
 * Returns 0, or -1 after finishing the attempt with the reason. */
int ha_probe_send_raw(ha_probe *p, const char *buf, size_t len);
/* For transports: the connection is ready for the protocol (after a handshake). */
void ha_probe_transport_ready(ha_probe *p);
/* For transports: plaintext (or the end of it) for the type. */
void ha_probe_deliver(ha_probe *p, const char *data, size_t len);
void ha_probe_deliver_eof(ha_probe *p);
/* Milliseconds left before the attempt's deadline. */
uint64_t ha_probe_remaining_ms(const ha_probe *p);

/* The plain TCP transport (transport_tcp.c) and TLS over it (transport_tls.c). */
extern const ha_transport ha_transport_tcp;
extern const ha_transport ha_transport_tls;
/* Logs a `tls_insecure` warning for each check that skips certificate verification. */
void ha_tls_log_insecure(const ha_check_config *checks, size_t n);

#endif
