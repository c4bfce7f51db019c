/* minprobe.c - the floor for an exec health probe: the least a process can do to ask an HTTP
 * endpoint "are you 200?". One blocking socket, connect, send, recv, compare, exit.
 *
 * It exists only as the benchmark's baseline (bench/run.sh builds it static with musl-gcc):
 * no URL parsing, no timeout, no name resolution, no output. Whatever healthagg's probe costs
 * above this is the price of its features (deadline, URL handling, a one-line reason).
 *
 * usage: minprobe PORT [PATH]   (host is always 127.0.0.1; default PATH /readyz)
 * exit:  0 when the status line says 200, else 1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 1;
    const char *path = argc > 2 ? argv[2] : "/readyz";
    char req[512];
    size_t plen = strlen(path);
    if (plen > 256)
        return 1;
    /* "GET " path " HTTP/1.0\r\n\r\n": HTTP/1.0 so the server closes after answering. */
    memcpy(req, "GET ", 4);
    memcpy(req + 4, path, plen);
    memcpy(req + 4 + plen, " HTTP/1.0\r\n\r\n", 13);
    size_t rlen = 4 + plen + 13;

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return 1;
    if (send(fd, req, rlen, MSG_NOSIGNAL) != (ssize_t)rlen)
        return 1;
    char buf[64];
    size_t got = 0;
    while (got < 12) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - got, 0);
        if (n <= 0)
            return 1;
        got += (size_t)n;
    }
    /* "HTTP/1.x 200" */
    return memcmp(buf, "HTTP/1.", 7) == 0 && memcmp(buf + 8, " 200", 4) == 0 ? 0 : 1;
}
