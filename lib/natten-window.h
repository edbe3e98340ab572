/*
 * natten-window.h - the neighbourhood of a query on one axis (spec section 1),
 * header-only so that C backends and CUDA/HIP kernels share one definition.
 *
 * All window arithmetic is in dilation-group coordinates: a global index i
 * belongs to group g = i mod d at position u = i / d; the group has
 * n = ceil((L - g) / d) members.  A window is a half-open range [a, b) of group
 * positions; slot t of query i is the key (a + t) * d + g, valid iff a + t < b.
 */
#ifndef NATTEN_WINDOW_H
#define NATTEN_WINDOW_H

#include <stdint.h>

#if defined(__CUDACC__) || defined(__HIPCC__)
#  define NATTEN_HD __host__ __device__ __forceinline__
#else
#  define NATTEN_HD static inline
#endif

/* Number of members of dilation group g on an axis of extent L. */
NATTEN_HD int64_t natten_group_len(int64_t L, int d, int64_t g)
{
    return (L - g + d - 1) / d;
}

/*
 * Window of group position u in a group of n members (n >= K):
 * non-causal: K positions centred on the stride leader, slid inside [0, n);
 * causal: from max(leader - K + 1, 0) up to and including u itself.
 */
NATTEN_HD void natten_window_g(int64_t n, int K, int s, int causal, int64_t u,
                               int64_t *a, int64_t *b)
{
    int64_t lead, start;
    if (causal) {
        lead = (u / s) * s + s - 1;
        if (lead > n - 1) lead = n - 1;
        start = lead - K + 1;
        if (start < 0) start = 0;
        *a = start;
        *b = u + 1;
    } else {
        lead = (u / s) * s + s / 2;
        if (lead > n - 1) lead = n - 1;
        start = lead - K / 2;
        if (start > n - K) start = n - K;
        if (start < 0) start = 0;
        *a = start;
        *b = start + K;
    }
}

/* Window of global index i on an axis (extent L, window K, dilation d, stride s). */
NATTEN_HD void natten_window(int64_t L, int K, int d, int s, int causal, int64_t i,
                             int64_t *a, int64_t *b)
{
    natten_window_g(natten_group_len(L, d, i % d), K, s, causal, i / d, a, b);
}

/*
 * Inverse neighbourhood in group coordinates: the queries [qa, qb) of a group
 * of n members whose windows contain position v.  The set is one contiguous
 * run (spec 1.8) because window starts never decrease with u; found here by
 * binary search on the start, then checked against the end.
 */
NATTEN_HD void natten_inverse_window_g(int64_t n, int K, int s, int causal, int64_t v,
                                       int64_t *qa, int64_t *qb)
{
    int64_t lo = 0, hi = n, a, b;
    /* first u with end(u) > v: ends are non-decreasing too */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        natten_window_g(n, K, s, causal, mid, &a, &b);
        if (b > v) hi = mid; else lo = mid + 1;
    }
    *qa = lo;
    /* first u with start(u) > v */
    lo = *qa;
    hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        natten_window_g(n, K, s, causal, mid, &a, &b);
        if (a > v) hi = mid; else lo = mid + 1;
    }
    *qb = lo;
}

/* Relative-position-bias index of (query u, key position v) in group coordinates. */
NATTEN_HD int64_t natten_rpb_index(int K, int64_t u, int64_t v)
{
    return v - u + K - 1;
}

#endif /* NATTEN_WINDOW_H */
