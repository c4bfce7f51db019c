/* grpc_call_live.c - drives one ha_grpc_call (src/checks/grpc_call.c) against a live server
 * over a plain blocking socket, no event loop: the gRPC layer alone against the real
 * @grpc/grpc-js server, independent of the probe engine. Used by tests/grpc/test_grpc_peer.py.
 *
 * Usage: grpc_call_live HOST PORT [SERVICE]
 * Prints "pass REASON" or "fail REASON"; exit 0 on pass, 1 on fail, 3 on a local error. */
#include "healthagg/grpc_call.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int send_all(void *ud, const char *data, size_t len)
{
    int fd = *(int *)ud;
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: grpc_call_live HOST PORT [SERVICE]\n");
        return 3;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "grpc_call_live: bad IPv4 address %s\n", argv[1]);
        return 3;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 3};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
        perror("grpc_call_live: socket");
        return 3;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        printf("fail connect: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    static uint8_t arena[HA_H2_ARENA_BYTES];
    char authority[300];
    snprintf(authority, sizeof(authority), "%s:%s", argv[1], argv[2]);
    const ha_grpc_call_params prm = {.scheme = "http",
                                     .authority = authority,
                                     .service = argc > 3 ? argv[3] : "",
                                     .send = send_all,
                                     .ud = &fd,
                                     .arena = arena};
    static ha_grpc_call g;
    if (ha_grpc_call_start(&g, &prm) == 0) {
        size_t peak = 0;
        char buf[4096];
        while (!g.done) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                printf("fail read: %s\n", strerror(errno));
                break;
            }
            if (g.h2.arena.used > peak)
                peak = g.h2.arena.used;
            if (n == 0)
                ha_grpc_call_eof(&g);
            else
                ha_grpc_call_recv(&g, buf, (size_t)n);
        }
        if (getenv("HA_H2_ARENA_STATS"))
            fprintf(stderr, "arena: peak %zu of %d bytes, %zu allocations outside it\n", peak,
                    HA_H2_ARENA_BYTES, g.h2.arena.fallbacks);
        /* Everything nghttp2 needs for a health call fits the arena: no malloc per probe. */
        if (g.h2.arena.fallbacks != 0) {
            fprintf(stderr, "grpc_call_live: %zu allocations did not fit the arena\n",
                    g.h2.arena.fallbacks);
            return 3;
        }
    }
    close(fd);
    if (g.done)
        printf("%s %s\n", g.ok ? "pass" : "fail", g.reason);
    ha_grpc_call_close(&g);
    if (!g.done || g.local_error)
        return 3;
    return g.ok ? 0 : 1;
}
