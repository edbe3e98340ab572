/* alloc.c - host memory for lib/ and the CPU backends, in one place so that
 * allocation failure can be injected and tested. */
#include "natten-impl.h"
#include "natten-fault.h"

#include <stdlib.h>

#ifdef NATTEN_FAULT_INJECTION
#include <stdatomic.h>

/* Allocations left before the one that fails; negative = never fail. */
static atomic_long fault_countdown = -1;
static atomic_long fault_allocations;

void natten_fault_fail_after(long n)
{
    atomic_store(&fault_countdown, n);
    atomic_store(&fault_allocations, 0);
}

long natten_fault_allocations(void)
{
    return atomic_load(&fault_allocations);
}

/* 1 if this allocation is the one to fail.  Once it has failed, later ones
 * succeed again, so that a test sees exactly one failure per run. */
static int fault_now(void)
{
    long left;
    atomic_fetch_add(&fault_allocations, 1);
    left = atomic_load(&fault_countdown);
    while (left >= 0) {
        if (atomic_compare_exchange_weak(&fault_countdown, &left, left - 1)) return left == 0;
    }
    return 0;
}
#else
static int fault_now(void) { return 0; }
#endif

void *natten_malloc(size_t bytes)
{
    if (fault_now()) return NULL;
    return malloc(bytes ? bytes : 1);
}

void *natten_calloc(size_t n, size_t size)
{
    if (fault_now()) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void natten_free(void *p)
{
    free(p);
}
