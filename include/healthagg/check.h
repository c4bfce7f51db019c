/* check.h - the probe engine: one attempt against one target, reported exactly once.
 *
 * A probe owns its handles (socket, timeout timer, parser) for its whole life and reuses them
 * across attempts, so a steady-state check cycle allocates nothing. The common part (name
 * resolution, connect, deadline, teardown) lives in check.c; what happens once connected is
 * per check type: check_http.c writes a request and parses the answer with llhttp,
 * check_tcp.c declares success on connect. */
#ifndef HEALTHAGG_CHECK_H
#define HEALTHAGG_CHECK_H

#include "healthagg/config.h"
#include "healthagg/state.h"

#include <llhttp.h>
#include <uv.h>

typedef struct ha_probe ha_probe;
typedef void (*ha_probe_done_cb)(ha_probe *p, const ha_result *r);

typedef enum {
    HA_PHASE_IDLE,
    HA_PHASE_RESOLVING,
    HA_PHASE_CONNECTING,
    HA_PHASE_WAITING, /* connected, request sent, no response byte yet */
    HA_PHASE_READING, /* response bytes arriving */
} ha_probe_phase;

/* What a check type does once the connection is up. */
typedef struct ha_check_ops {
    void (*on_connected)(ha_probe *p);
    void (*on_data)(ha_probe *p, const char *data, size_t len);
    void (*on_eof)(ha_probe *p);
} ha_check_ops;

#define HA_PROBE_RBUF 4096

struct ha_probe {
    uv_loop_t *loop;
    const ha_check_config *cfg;
    const ha_check_ops *ops;
    ha_probe_done_cb done;
    void *data; /* the owner's */

    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    struct sockaddr_storage addr; /* resolved once for IP literals */
    bool addr_is_literal;
    char target[HA_HOST_MAX + 16]; /* "host:port" for messages */

    ha_probe_phase phase;
    bool running;     /* an attempt is in progress; done() not yet called */
    bool tcp_open;    /* tcp handle initialised and not yet closed */
    bool tcp_closing; /* uv_close issued, callback pending */
    bool shutting_down;
    bool inconclusive;   /* the attempt is ending on a local resource error */
    unsigned generation; /* bumps per attempt; stale async callbacks compare it */
    uint64_t start_ns;

    /* http */
    char *request; /* prebuilt request bytes, owned */
    size_t request_len;
    llhttp_t parser;
    uint64_t bytes_read;
    bool headers_done;
    bool message_done;
    size_t body_match_pos; /* KMP state over expect_body */
    bool body_matched;
    uint16_t *kmp; /* failure table for expect_body, owned */
    char rbuf[HA_PROBE_RBUF];
};

/* Prepares a probe for `cfg` (which must outlive it). Returns 0 or a libuv error. */
int ha_probe_init(ha_probe *p, uv_loop_t *loop, const ha_check_config *cfg, ha_probe_done_cb done,
                  void *data);
/* Starts one attempt; `done` is called exactly once, possibly before this returns.
 * Returns UV_EBUSY while the previous attempt's socket is still closing. */
int ha_probe_start(ha_probe *p);
/* Stops any attempt without reporting and closes the probe's handles; `done` is not called.
 * The memory may be released once the loop has run the close callbacks. */
void ha_probe_close(ha_probe *p);
/* Releases what ha_probe_init allocated (after the loop has finished closing). */
void ha_probe_free(ha_probe *p);

/* For check types: finish the attempt with a verdict. */
void ha_probe_finish(ha_probe *p, bool ok, int http_status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* For check types: write bytes on the connection (the buffer must outlive the write). */
void ha_probe_write(ha_probe *p, const char *buf, size_t len);

extern const ha_check_ops ha_check_http_ops;
extern const ha_check_ops ha_check_tcp_ops;
int ha_check_http_init(ha_probe *p);
void ha_check_http_reset(ha_probe *p);

#endif
