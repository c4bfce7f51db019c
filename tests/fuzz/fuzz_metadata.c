/* fuzz_metadata.c - libFuzzer target for the ECS task metadata client's parsers (src/metadata.c):
 * the bytes an endpoint (the ECS agent, or whatever answers at that address) sends back, read as
 * an HTTP response in chunks, then the body parsed as a task document and a container described.
 *
 * Control byte (first input byte): bits 0-1 chunking (whole / 1-byte / 1-16 / 1-700 bytes),
 * bits 2-7 seed of the chunk-size generator.
 *
 * Invariants (abort() = a crash libFuzzer reports): an error always has a message; a complete
 * response's body is within HA_META_MAX_BODY; a parsed document always has a TaskARN and at
 * most HA_META_MAX_CONTAINERS containers with names and statuses of A-Z or _ only; the
 * description is a bounded, non-empty string starting with "container ". */
#include "healthagg/metadata.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0], seed = ctl >> 2;
    const char *in = (const char *)data + 1;
    size_t n = size - 1, off = 0;
    ha_meta_response r;
    ha_meta_response_init(&r);
    int rc = 0;
    while (off < n && rc == 0 && !r.complete) {
        size_t chunk = n - off;
        seed = seed * 1103515245u + 12345u;
        switch (ctl & 3) {
        case 1:
            chunk = 1;
            break;
        case 2:
            chunk = 1 + (seed >> 8) % 16;
            break;
        case 3:
            chunk = 1 + (seed >> 8) % 700;
            break;
        }
        if (chunk > n - off)
            chunk = n - off;
        rc = ha_meta_response_feed(&r, in + off, chunk);
        off += chunk;
    }
    if (rc == 0 && !r.complete)
        rc = ha_meta_response_eof(&r);
    if (rc != 0 && !r.error[0])
        abort();
    if (rc == 0) {
        if (!r.complete || r.len > HA_META_MAX_BODY)
            abort();
        ha_task_info t;
        char err[128] = "";
        if (ha_metadata_parse_task(r.body ? r.body : "", r.len, &t, err, sizeof(err)) == 0) {
            if (!t.task_arn[0] || t.n_containers > HA_META_MAX_CONTAINERS)
                abort();
            for (size_t i = 0; i < t.n_containers; i++) {
                if (!t.containers[i].name[0])
                    abort();
                for (const char *p = t.containers[i].status; *p; p++)
                    if (!((*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '?'))
                        abort();
            }
            char d[128];
            ha_metadata_describe(&t, t.n_containers ? t.containers[0].name : "app", d, sizeof(d));
            if (strncmp(d, "container ", 10) != 0 || strlen(d) >= sizeof(d))
                abort();
        } else if (!err[0]) {
            abort();
        }
    }
    ha_meta_response_free(&r);
    return 0;
}
