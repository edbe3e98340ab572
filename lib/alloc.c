/* alloc.c - host memory for lib/ and the CPU backends, in one place so that
 * allocation failure can be injected and tested. */
#include "natten-impl.h"

#include <stdlib.h>

void *natten_malloc(size_t bytes)
{
    return malloc(bytes ? bytes : 1);
}

void *natten_calloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size ? size : 1);
}

void natten_free(void *p)
{
    free(p);
}
