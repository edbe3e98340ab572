/* status.c - status strings and the thread-local error message. */
#include "natten-impl.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

const char *natten_status_string(natten_status s)
{
    static const char *const text[] = {
        [NATTEN_SUCCESS] = "success",
        [NATTEN_ERROR_INVALID_ARGUMENT] = "invalid argument",
        [NATTEN_ERROR_UNSUPPORTED] = "unsupported",
        [NATTEN_ERROR_BACKEND_UNAVAILABLE] = "backend unavailable",
        [NATTEN_ERROR_OUT_OF_MEMORY] = "out of memory",
        [NATTEN_ERROR_DEVICE] = "device error",
        [NATTEN_ERROR_INTERNAL] = "internal error",
    };
    if ((unsigned)s >= sizeof text / sizeof text[0]) return "unknown status";
    return text[s];
}

const char *natten_last_error(void)
{
    return last_error;
}

natten_status natten_error(natten_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

void natten_clear_error(void)
{
    last_error[0] = '\0';
}
