/*
 * natten-half.h - IEEE binary16 and bfloat16 conversions for CPU backends.
 * Conversions to half round to nearest, ties to even, straight from the wider
 * type (no double rounding through float).
 */
#ifndef NATTEN_HALF_H
#define NATTEN_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float natten_f16_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t bits;
    float f;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float */
        f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    } else {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t natten_double_to_f16(double x)
{
    uint16_t sign = signbit(x) ? 0x8000u : 0;
    double a = fabs(x);
    int e;
    if (isnan(x)) return (uint16_t)(sign | 0x7e00u);
    if (a >= 65520.0) return (uint16_t)(sign | 0x7c00u); /* rounds to infinity */
    if (a < 0x1p-14) {                                     /* subnormal range */
        return (uint16_t)(sign | (uint16_t)nearbyint(a * 0x1p24));
    }
    frexp(a, &e);
    e -= 1;                                                /* a = 1.m * 2^e */
    {
        double m = nearbyint((ldexp(a, -e) - 1.0) * 1024.0);
        if (m >= 1024.0) { m = 0; e += 1; }
        if (e + 15 >= 31) return (uint16_t)(sign | 0x7c00u);
        return (uint16_t)(sign | (uint16_t)((e + 15) << 10) | (uint16_t)m);
    }
}

static inline uint16_t natten_float_to_f16(float x) { return natten_double_to_f16(x); }

static inline float natten_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t natten_float_to_bf16(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if (isnan(x)) return (uint16_t)((bits >> 16) | 0x40u);
    bits += 0x7fffu + ((bits >> 16) & 1u);               /* round to nearest even */
    return (uint16_t)(bits >> 16);
}

static inline uint16_t natten_double_to_bf16(double x)
{
    uint16_t sign = signbit(x) ? 0x8000u : 0;
    double a = fabs(x);
    int e;
    if (isnan(x)) return (uint16_t)(sign | 0x7fc0u);
    if (isinf(x)) return (uint16_t)(sign | 0x7f80u);
    if (a < 0x1p-126) {                                    /* subnormal range */
        return (uint16_t)(sign | (uint16_t)nearbyint(a * 0x1p133));
    }
    frexp(a, &e);
    e -= 1;
    {
        double m = nearbyint((ldexp(a, -e) - 1.0) * 128.0);
        if (m >= 128.0) { m = 0; e += 1; }
        if (e + 127 >= 255) return (uint16_t)(sign | 0x7f80u);
        return (uint16_t)(sign | (uint16_t)((e + 127) << 7) | (uint16_t)m);
    }
}

#endif /* NATTEN_HALF_H */
