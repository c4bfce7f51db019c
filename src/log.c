/* log.c - the JSON-lines logger (see log.h). Allocation here is fine: events are rare
 * (startup, transitions, shutdown), never per request or per passing probe. */
#include "healthagg/log.h"

#include "healthagg/quote.h"
#include "healthagg/timeutil.h"

#include <stdio.h>
#include <stdlib.h>

cJSON *ha_log_begin(const char *level, const char *event)
{
    char when[HA_RFC3339_MAX];
    ha_format_rfc3339(ha_wall_ms(), when, sizeof(when));
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (!cJSON_AddStringToObject(o, "time", when) || !cJSON_AddStringToObject(o, "level", level) ||
        !cJSON_AddStringToObject(o, "event", event)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

void ha_log_emit(cJSON *obj)
{
    /* cJSON copies string bytes as they are: the guard keeps the line valid UTF-8 JSON even if
     * some field carried bytes that are not UTF-8 (a path, a URL from a flag). */
    char *line = obj ? ha_json_fix_utf8(cJSON_PrintUnformatted(obj)) : NULL;
    if (line) {
        fputs(line, stdout);
        fputc('\n', stdout);
        free(line);
    } else {
        /* Out of memory: still say something rather than drop the event silently. */
        fputs("{\"level\":\"error\",\"event\":\"log\",\"error\":\"out of memory formatting a log "
              "line\"}\n",
              stdout);
    }
    fflush(stdout);
    cJSON_Delete(obj);
}
