#include "report.h"

#include <stdio.h>
#include <stdlib.h>

void report_set(json_t *r, const char *key, json_t *value)
{
    if (r == NULL) {
        json_decref(value);
        return;
    }
    json_object_set_new(r, key, value ? value : json_null());
}

void report_finish(json_t *r, const char *command, int rc, const sc_err *err, const char *started,
                   double duration_s)
{
    if (r == NULL)
        return;
    json_object_set_new(r, "schema", json_string(REPORT_SCHEMA));
    json_object_set_new(r, "tool", json_string("stagecoach " SC_VERSION));
    json_object_set_new(r, "command", json_string(command));
    /* Success is the exit code, never a step's own idea of it. */
    json_object_set_new(r, "status", json_string(rc == 0 ? "success" : "failure"));
    json_object_set_new(r, "exit_code", json_integer(rc));
    json_object_set_new(r, "error_kind", json_string(sc_exit_name(rc)));
    json_object_set_new(r, "error", rc != 0 && err ? json_string(err->msg) : json_null());
    json_object_set_new(r, "started", started ? json_string(started) : json_null());
    json_object_set_new(r, "duration_s", json_real(duration_s));
}

void report_print(json_t *r)
{
    char *text = json_dumps(r, JSON_INDENT(2));
    if (text == NULL)
        return;
    puts(text);
    free(text);
}
