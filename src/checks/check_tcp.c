/* check_tcp.c - tcp:// checks: the target accepted a connection, that is the whole test.
 * Useful for dependencies that don't speak HTTP (a database, a cache) - it proves the port
 * is open and accepting, not that the service behind it is well. */
#include "healthagg/check.h"

static void tcp_on_connected(ha_probe *p)
{
    ha_probe_finish(p, true, 0, "connected (%s)", p->target);
}

/* Never reached: the attempt ends on connect. Kept so every check type fills the table. */
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

const ha_check_ops ha_check_tcp_ops = {
    .on_connected = tcp_on_connected,
    .on_data = tcp_on_data,
    .on_eof = tcp_on_eof,
};
