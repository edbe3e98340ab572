/*
 * natten-fault.h - private, test builds only (configure --enable-fault-injection):
 * the allocation-failure hook of alloc.c.  Every host allocation of lib/ and
 * the CPU backends goes through natten_malloc/natten_calloc, which count.
 * Never installed; in a normal build these functions do not exist.
 */
#ifndef NATTEN_FAULT_H
#define NATTEN_FAULT_H

#include "natten.h"

#ifdef NATTEN_FAULT_INJECTION
/* Make the allocation n allocations from now fail (n = 0: the next one), once;
 * n < 0 disables.  Also resets the allocation counter. */
NATTEN_API void natten_fault_fail_after(long n);
/* Allocations attempted since the last natten_fault_fail_after(). */
NATTEN_API long natten_fault_allocations(void);
#endif

#endif
