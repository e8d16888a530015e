/*
 * version.c -- the library's version and the descriptions of its status codes.
 */
#include "stefast.h"

#define STEFAST_STR_(x) #x
#define STEFAST_STR(x) STEFAST_STR_(x)

const char *stefast_version(void)
{
    return STEFAST_STR(STEFAST_VERSION_MAJOR) "." STEFAST_STR(STEFAST_VERSION_MINOR) "."
        STEFAST_STR(STEFAST_VERSION_PATCH);
}

const char *stefast_strerror(stefast_status status)
{
    switch (status) {
    case STEFAST_OK: return "success";
    case STEFAST_EINVAL: return "invalid argument (a size, count or enum value out of range)";
    case STEFAST_ENOMEM: return "out of memory for scratch space";
    case STEFAST_EINTR: return "stopped by the interrupt flag";
    default: return "unknown stefast status";
    }
}
