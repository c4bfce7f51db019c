/* check_tcp.c - tcp:// checks: the target accepted a connection, that is the whole test.
 * Useful for dependencies that don't speak HTTP (a database, a cache) - it proves the port
 * is open and accepting, not that the service behind it is well. */
#include "healthagg/check.h"

#include <stdio.h>

static int tcp_check_url(const ha_check_config *c, char *err, size_t errlen)
{
    if (c->url.has_path) {
        snprintf(err, errlen, "tcp:// URLs have no path; use tcp://HOST:PORT");
        return -1;
    }
    return 0;
}

static void tcp_on_connected(ha_probe *p)
{
    ha_probe_finish(p, true, 0, "connected (%s)", p->target);
}

/* Never reached: the attempt ends on connect. */
static void tcp_on_data(ha_probe *p, const char *data, size_t len)
{
    (void)p;
    (void)data;
    (void)len;
}

static void tcp_on_eof(ha_probe *p)
{
    (void)p;
}

const ha_check_type ha_check_tcp = {
    .name = "tcp",
    .check_url = tcp_check_url,
    .on_connected = tcp_on_connected,
    .on_data = tcp_on_data,
    .on_eof = tcp_on_eof,
};
