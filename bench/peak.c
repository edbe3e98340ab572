/*
 * peak.c - this CPU's fp32 FMA throughput: independent chains of a = a*b + c
 * on the widest vectors the CPU has (AVX-512, AVX2+FMA, or whatever the
 * compiler makes of a plain loop), on N threads at once.  Enough chains (12)
 * to cover FMA latency x FMA ports on current x86 cores.
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHAINS 12

/* Fully unroll the chain loop so the accumulators live in registers. */
#if defined(__clang__)
#define UNROLL_CHAINS _Pragma("unroll")
#elif defined(__GNUC__)
#define UNROLL_CHAINS _Pragma("GCC unroll 12")
#else
#define UNROLL_CHAINS
#endif

typedef double (*fma_kernel)(long iters, double *flops);

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define HAVE_X86_KERNELS 1

__attribute__((target("avx512f"))) static double fma_avx512(long iters, double *flops)
{
    __m512 a[CHAINS], b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
    float out[16];
    double s = 0;
    for (int j = 0; j < CHAINS; j++) a[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
UNROLL_CHAINS
        for (int j = 0; j < CHAINS; j++) a[j] = _mm512_fmadd_ps(a[j], b, c);
    }
    for (int j = 1; j < CHAINS; j++) a[0] = _mm512_add_ps(a[0], a[j]);
    _mm512_storeu_ps(out, a[0]);
    for (int l = 0; l < 16; l++) s += out[l];
    *flops = 2.0 * 16 * CHAINS * (double)iters;
    return s;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long iters, double *flops)
{
    __m256 a[CHAINS], b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    float out[8];
    double s = 0;
    for (int j = 0; j < CHAINS; j++) a[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
UNROLL_CHAINS
        for (int j = 0; j < CHAINS; j++) a[j] = _mm256_fmadd_ps(a[j], b, c);
    }
    for (int j = 1; j < CHAINS; j++) a[0] = _mm256_add_ps(a[0], a[j]);
    _mm256_storeu_ps(out, a[0]);
    for (int l = 0; l < 8; l++) s += out[l];
    *flops = 2.0 * 8 * CHAINS * (double)iters;
    return s;
}
#endif

/* Portable: the compiler vectorises the inner loop with whatever it targets. */
static double fma_plain(long iters, double *flops)
{
    float a[CHAINS][8];
    const float b = 0.9999999f, c = 1e-7f;
    double s = 0;
    for (int j = 0; j < CHAINS; j++)
        for (int l = 0; l < 8; l++) a[j][l] = (float)(j + l);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++)
            for (int l = 0; l < 8; l++) a[j][l] = a[j][l] * b + c;
    for (int j = 0; j < CHAINS; j++)
        for (int l = 0; l < 8; l++) s += a[j][l];
    *flops = 2.0 * 8 * CHAINS * (double)iters;
    return s;
}

static fma_kernel pick(const char **isa)
{
#ifdef HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *isa = "avx512f";
        return fma_avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *isa = "avx2+fma";
        return fma_avx2;
    }
#endif
    *isa = "plain C";
    return fma_plain;
}

const char *bench_peak_isa(void)
{
    const char *isa;
    pick(&isa);
    return isa;
}

typedef struct {
    fma_kernel k;
    long iters;
    double flops, sink, cpu_seconds;
} peak_job;

static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each thread times itself in CPU time, not wall time: on a busy machine a
 * descheduled thread would otherwise look slow, and the peak is a property of
 * the cores, not of the load. */
static void *peak_thread(void *arg)
{
    peak_job *j = arg;
    double t0 = thread_cpu_now();
    j->sink = j->k(j->iters, &j->flops);
    j->cpu_seconds = thread_cpu_now() - t0;
    return NULL;
}

double bench_peak_gflops(int threads, double seconds)
{
    const char *isa;
    fma_kernel k = pick(&isa);
    peak_job jobs[256];
    pthread_t tid[256];
    long iters = 1 << 16;
    double best = 0, t0, dt, flops;
    if (threads < 1) threads = 1;
    if (threads > 256) threads = 256;
    /* calibrate the iteration count so that one round takes ~seconds/5 */
    for (;;) {
        t0 = bench_now();
        k(iters, &flops);
        dt = bench_now() - t0;
        if (dt > seconds / 20 || iters > (1L << 40)) break;
        iters *= 2;
    }
    iters = (long)((double)iters * (seconds / 5) / (dt > 0 ? dt : 1e-9)) + 1;
    for (int round = 0; round < 5; round++) {
        int started = 0;
        flops = 0;
        for (int t = 0; t < threads; t++) {
            jobs[t].k = k;
            jobs[t].iters = iters;
            if (pthread_create(&tid[t], NULL, peak_thread, &jobs[t]) != 0) break;
            started++;
        }
        for (int t = 0; t < started; t++) {
            pthread_join(tid[t], NULL);
            if (jobs[t].cpu_seconds > 0) flops += jobs[t].flops / jobs[t].cpu_seconds;
        }
        if (flops > best) best = flops;
    }
    return best * 1e-9;
}

int bench_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void bench_cpu_model(char *buf, size_t len)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(buf, len, "unknown CPU");
    if (f == NULL) return;
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            colon += 2;
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(buf, len, "%s", colon);
            break;
        }
    }
    fclose(f);
}
