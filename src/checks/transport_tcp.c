/* transport_tcp.c - the plain transport: bytes go to the socket and come back unchanged.
 * Ready as soon as TCP connects. TLS (when it lands) is the other row of this table's kind,
 * so HTTP and gRPC code never learn which one they run over. */
#include "healthagg/check.h"

static void tcp_on_connected(ha_probe *p)
{
    ha_probe_transport_ready(p);
}

static void tcp_on_bytes(ha_probe *p, const char *data, size_t len)
{
    ha_probe_deliver(p, data, len);
}

static void tcp_on_eof(ha_probe *p)
{
    ha_probe_deliver_eof(p);
}

static int tcp_send(ha_probe *p, const char *data, size_t len)
{
    return ha_probe_send_raw(p, data, len);
}

const ha_transport ha_transport_tcp = {
    .name = "tcp",
    .on_connected = tcp_on_connected,
    .on_bytes = tcp_on_bytes,
    .on_eof = tcp_on_eof,
    .send = tcp_send,
};
