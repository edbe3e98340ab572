/*
 * check_selection.c - runtime selection through the public API: the pick
 * never refuses the problem, forcing is strict (unknown name, refusal: errors,
 * never a silent fallback), natten_explain agrees with what runs, measured
 * selection gives naive's results and reports its candidates, wisdom round-
 * trips and refuses damaged or foreign files, and one context can tune from
 * eight threads at once.  Loops over natten_backend_count() where a backend
 * is the subject; with the naive backend alone the multi-candidate paths are
 * covered by check_tuner (fake backends).
 */
#include "cases.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t seed;

/* Tolerances (data): max |x - naive| / max(1, max |naive|), as check_equivalence. */
static const struct tol { const char *dtype; double limit; } tolerances[] = {
    {"float64", 1e-10}, {"float32", 1e-4},
};

static natten_context *new_ctx(void)
{
    natten_context *ctx;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    return ctx;
}

/* The problem's tensors as natten_explain takes them (role orders agree). */
static void tensors_of(const tc_io *io, const DLTensor *t[NATTEN_ARG_COUNT])
{
    for (int x = 0; x < NATTEN_ARG_COUNT; x++) t[x] = io->t[x] ? &io->t[x]->t : NULL;
}

/* Compare every output of io with the naive backend's on the same inputs. */
static void expect_naive(const tc_io *io, const struct tol *tl, const char *what)
{
    natten_context *ref = new_ctx();
    tc_io r = *io;
    char desc[256];
    tc_describe(&io->r, desc, sizeof desc);
    ck_assert_int_eq(natten_context_set_backend(ref, "naive"), NATTEN_SUCCESS);
    for (int x = 0; x < R_COUNT; x++) /* same inputs, own outputs */
        if (io->t[x] && (io->outputs & (1u << x))) r.t[x] = tt_clone_layout(io->t[x], TT_COMPACT, kDLCPU);
    ck_assert_int_eq(tc_run(ref, &r), NATTEN_SUCCESS);
    for (int x = 0; x < R_COUNT; x++) {
        double *want;
        tt_err e;
        if (!io->t[x] || !(io->outputs & (1u << x))) continue;
        want = tt_to_double(r.t[x]);
        e = tt_compare(io->t[x], want);
        ck_assert_msg(e.bad == 0 && e.norm <= tl->limit,
                      "%s: %s %s on %s: %s differs from naive: normalised %.3g (limit %.1g), %lld bad; seed %llu",
                      what, tc_op_names[io->op], tl->dtype, desc, tc_role_names[x], e.norm, tl->limit,
                      (long long)e.bad, (unsigned long long)seed);
        free(want);
        tt_free(r.t[x]);
    }
    natten_context_destroy(ref);
}

/* ---- the pick never refuses; explain tells the truth ---------------------- */

START_TEST(pick_accepts)
{
    tc_op op = (tc_op)_i;
    int n = natten_backend_count(), checked = 0;
    for (int c = 0; c < tc_ncases; c++)
        for (int layout = 0; layout < TT_LAYOUT_COUNT; layout++) {
            uint64_t rng = seed ^ (uint64_t)(c * 977 + layout);
            natten_context *ctx = new_ctx();
            const DLTensor *t[NATTEN_ARG_COUNT];
            const char *explained, *first = NULL;
            char text[4096];
            tc_io io;
            ck_assert(tc_setup(&io, &tc_cases[c].r, op, tt_dtype("float32"), (tt_layout)layout, kDLCPU, &rng));
            tensors_of(&io, t);
            /* the first backend that does not refuse, found by forcing each in turn */
            for (int b = 0; b < n && !first; b++) {
                natten_backend_info info;
                natten_context *f = new_ctx();
                ck_assert_int_eq(natten_backend_get_info(b, &info), NATTEN_SUCCESS);
                if (info.available && info.device_type == kDLCPU) {
                    natten_status st;
                    ck_assert_int_eq(natten_context_set_backend(f, info.name), NATTEN_SUCCESS);
                    st = tc_run(f, &io);
                    ck_assert_msg(st == NATTEN_SUCCESS || st == NATTEN_ERROR_UNSUPPORTED, "%s: %s", info.name,
                                  natten_last_error());
                    if (st == NATTEN_SUCCESS) first = info.name;
                }
                natten_context_destroy(f);
            }
            ck_assert_msg(first != NULL, "no backend accepts case %s", tc_cases[c].name);
            ck_assert_int_eq(natten_explain(ctx, (natten_op)op, &io.params, t, &explained, text, sizeof text),
                             NATTEN_SUCCESS);
            ck_assert_int_eq(tc_run(ctx, &io), NATTEN_SUCCESS);
            ck_assert_str_eq(natten_context_last_backend(ctx), first);
            ck_assert_msg(strcmp(explained, first) == 0, "explain says %s, %s runs:\n%s", explained, first, text);
            ck_assert_msg(strstr(text, "RUNS") != NULL, "explanation lacks the pick:\n%s", text);
            tc_teardown(&io);
            natten_context_destroy(ctx);
            checked++;
        }
    printf("selection %-12s: %d problems, the pick never refused and explain agreed\n", tc_op_names[op], checked);
}
END_TEST

/* explain reads shapes only: NULL data is fine, and an invalid request says why. */
START_TEST(explain_without_data)
{
    int64_t shape[4] = {1, 16, 2, 8};
    DLTensor q = {NULL, {kDLCPU, 0}, 4, {kDLFloat, 32, 1}, shape, NULL, 0};
    const DLTensor *t[NATTEN_ARG_COUNT] = {0};
    natten_context *ctx = new_ctx();
    natten_params p;
    const char *pick = "x";
    char text[2048];
    int k = 5;
    natten_params_init(&p, 1, &k);
    t[NATTEN_ARG_Q] = t[NATTEN_ARG_K] = t[NATTEN_ARG_V] = t[NATTEN_ARG_OUT] = &q;
    ck_assert_int_eq(natten_explain(ctx, NATTEN_OP_FNA_FORWARD, &p, t, &pick, text, sizeof text), NATTEN_SUCCESS);
    ck_assert_ptr_nonnull(pick);
    ck_assert_msg(strstr(text, pick) != NULL, "%s", text);
    k = 17; /* larger than the extent */
    natten_params_init(&p, 1, &k);
    ck_assert_int_eq(natten_explain(ctx, NATTEN_OP_FNA_FORWARD, &p, t, &pick, text, sizeof text),
                     NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_ptr_null(pick);
    ck_assert_msg(strstr(text, "kernel_size[0]") != NULL, "%s", text);
    ck_assert_int_eq(natten_explain(ctx, NATTEN_OP_COUNT, &p, t, NULL, text, sizeof text),
                     NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_explain(NULL, NATTEN_OP_FNA_FORWARD, &p, t, NULL, NULL, 0),
                     NATTEN_ERROR_INVALID_ARGUMENT);
    /* a tiny buffer is truncated, still terminated */
    natten_params_init(&p, 1, (int[]){3});
    ck_assert_int_eq(natten_explain(ctx, NATTEN_OP_FNA_FORWARD, &p, t, NULL, text, 8), NATTEN_SUCCESS);
    ck_assert_uint_eq(strlen(text), 7);
    natten_context_destroy(ctx);
}
END_TEST

/* ---- forcing is strict ---------------------------------------------------------- */

START_TEST(forced_unknown_name)
{
    natten_context *ctx = new_ctx();
    ck_assert_int_eq(natten_context_set_backend(ctx, "no-such-backend"), NATTEN_ERROR_BACKEND_UNAVAILABLE);
    ck_assert_msg(strstr(natten_last_error(), "no-such-backend") != NULL, "%s", natten_last_error());
    natten_context_destroy(ctx);
    setenv("NATTEN_BACKEND", "no-such-backend", 1);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_ERROR_BACKEND_UNAVAILABLE);
    ck_assert_ptr_null(ctx);
    setenv("NATTEN_BACKEND", "naive/no-such-config", 1);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_ERROR_BACKEND_UNAVAILABLE);
    ck_assert_ptr_null(ctx);
    unsetenv("NATTEN_BACKEND");
}
END_TEST

/* "backend/configuration" forces one configuration (by name or index) and
 * bypasses the tuner; an unknown one is refused and names those there are. */
START_TEST(forced_configuration)
{
    natten_context *ctx = new_ctx();
    const DLTensor *t[NATTEN_ARG_COUNT];
    uint64_t rng = seed;
    char text[4096];
    const char *pick;
    tc_io io;
    ck_assert_int_eq(natten_context_set_backend(ctx, "naive/nope"), NATTEN_ERROR_BACKEND_UNAVAILABLE);
    ck_assert_msg(strstr(natten_last_error(), "no configuration 'nope'") != NULL &&
                  strstr(natten_last_error(), "default") != NULL, "%s", natten_last_error());
    ck_assert_int_eq(natten_context_set_backend(ctx, "naive/1"), NATTEN_ERROR_BACKEND_UNAVAILABLE);
    ck_assert_int_eq(natten_context_set_backend(ctx, "nope/default"), NATTEN_ERROR_BACKEND_UNAVAILABLE);
    ck_assert_int_eq(natten_context_set_backend(ctx, "naive/0"), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, "naive/default"), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE), NATTEN_SUCCESS);
    ck_assert(tc_setup(&io, &tc_cases[0].r, OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
    tensors_of(&io, t);
    ck_assert_int_eq(natten_explain(ctx, NATTEN_OP_FNA_FORWARD, &io.params, t, &pick, text, sizeof text),
                     NATTEN_SUCCESS);
    ck_assert_msg(strstr(text, "pick      naive/default: forced") != NULL, "%s", text);
    ck_assert_int_eq(tc_run(ctx, &io), NATTEN_SUCCESS);
    ck_assert_str_eq(natten_context_last_backend(ctx), "naive");
    /* nothing was measured */
    ck_assert_int_eq(natten_context_tuning_report(ctx, NULL, 0, NULL, NULL, 0), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_context_set_backend(ctx, "auto"), NATTEN_SUCCESS);
    tc_teardown(&io);
    natten_context_destroy(ctx);
}
END_TEST

/* Each backend, forced on tensors of a device it does not run on: refused with
 * NATTEN_ERROR_UNSUPPORTED, outputs untouched, no other backend steps in. */
START_TEST(forced_refusal_is_an_error)
{
    natten_backend_info info;
    natten_context *ctx = new_ctx();
    const DLTensor *t[NATTEN_ARG_COUNT];
    uint64_t rng = seed;
    DLDeviceType other;
    char text[4096];
    const char *pick;
    tc_io io;
    ck_assert_int_eq(natten_backend_get_info(_i, &info), NATTEN_SUCCESS);
    if (!info.available) {
        printf("selection forced %-10s: skipped, unavailable: %s\n", info.name, info.reason);
        natten_context_destroy(ctx);
        return;
    }
    ck_assert_int_eq(natten_context_set_backend(ctx, info.name), NATTEN_SUCCESS);
    other = info.device_type == kDLCPU ? kDLCUDA : kDLCPU;
    ck_assert(tc_setup(&io, &tc_cases[0].r, OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
    for (int x = 0; x < R_COUNT; x++) /* host memory, labelled as another device: never dereferenced */
        if (io.t[x]) io.t[x]->t.device.device_type = other;
    tensors_of(&io, t);
    ck_assert_int_eq(natten_explain(ctx, NATTEN_OP_FNA_FORWARD, &io.params, t, &pick, text, sizeof text),
                     NATTEN_ERROR_UNSUPPORTED);
    ck_assert_ptr_null(pick);
    ck_assert_int_eq(tc_run(ctx, &io), NATTEN_ERROR_UNSUPPORTED);
    ck_assert_msg(strstr(natten_last_error(), "forced") != NULL, "%s", natten_last_error());
    ck_assert_ptr_null(natten_context_last_backend(ctx));
    for (int x = 0; x < R_COUNT; x++) { /* still the poison tc_run put there */
        if (!io.t[x] || !(io.outputs & (1u << x))) continue;
        for (int64_t i = 0; i < io.t[x]->numel; i++) ck_assert(tt_get(io.t[x], i) != tt_get(io.t[x], i));
    }
    /* measure mode does not turn a refusal into a fallback either */
    ck_assert_int_eq(natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE), NATTEN_SUCCESS);
    ck_assert_int_eq(tc_run(ctx, &io), NATTEN_ERROR_UNSUPPORTED);
    tc_teardown(&io);
    natten_context_destroy(ctx);
}
END_TEST

START_TEST(tuning_mode_settings)
{
    natten_context *ctx = new_ctx();
    natten_tuning_result r[4];
    ck_assert_int_eq(natten_context_set_tuning(ctx, (natten_tuning)7), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_context_set_tuning(NULL, NATTEN_TUNING_MEASURE), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_context_tuning_report(ctx, r, 4, NULL, NULL, 0), NATTEN_ERROR_INVALID_ARGUMENT);
    natten_context_destroy(ctx);
    setenv("NATTEN_TUNING", "fastest", 1);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_ERROR_INVALID_ARGUMENT);
    setenv("NATTEN_TUNING", "measure", 1);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    natten_context_destroy(ctx);
    unsetenv("NATTEN_TUNING");
    for (int i = 0; i < 4; i++) { /* a prune factor is >= 1, or 0/off */
        static const char *const bad[] = {"0.5", "fast", "3x", "-2"};
        setenv("NATTEN_TUNING_PRUNE", bad[i], 1);
        ck_assert_int_eq(natten_context_create(&ctx), NATTEN_ERROR_INVALID_ARGUMENT);
        ck_assert_msg(strstr(natten_last_error(), "NATTEN_TUNING_PRUNE") != NULL, "%s", natten_last_error());
    }
    for (int i = 0; i < 4; i++) {
        static const char *const good[] = {"0", "off", "1", "2.5"};
        setenv("NATTEN_TUNING_PRUNE", good[i], 1);
        ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
        natten_context_destroy(ctx);
    }
    unsetenv("NATTEN_TUNING_PRUNE");
}
END_TEST

/* ---- measured selection ------------------------------------------------------------ */

START_TEST(measured_equals_naive)
{
    tc_op op = (tc_op)_i;
    int problems = 0;
    natten_context *ctx = new_ctx();
    ck_assert_int_eq(natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE), NATTEN_SUCCESS);
    for (size_t tl = 0; tl < sizeof tolerances / sizeof tolerances[0]; tl++)
        for (int c = 0; c < tc_ncases; c++)
            for (int layout = 0; layout < TT_LAYOUT_COUNT; layout += 2) {
                uint64_t rng = seed ^ (uint64_t)(c * 31 + layout * 7 + (int)tl);
                natten_tuning_result r[32];
                char sig[512], sig2[512];
                int count = 0;
                tc_io io;
                ck_assert(tc_setup(&io, &tc_cases[c].r, op, tt_dtype(tolerances[tl].dtype), (tt_layout)layout,
                                   kDLCPU, &rng));
                ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s", natten_last_error());
                expect_naive(&io, &tolerances[tl], "measured");
                ck_assert_int_eq(natten_context_tuning_report(ctx, r, 32, &count, sig, sizeof sig), NATTEN_SUCCESS);
                ck_assert_int_ge(count, 1);
                ck_assert_int_eq(r[0].status, NATTEN_SUCCESS);
                ck_assert(r[0].time_ms >= 0 && r[0].runs >= 1 && !r[0].pruned);
                ck_assert_str_eq(r[0].backend, natten_context_last_backend(ctx));
                /* fully timed ones fastest first, then the pruned ones by their time */
                for (int i = 1; i < count && i < 32; i++) {
                    if (r[i].status == NATTEN_SUCCESS)
                        ck_assert(r[i - 1].status == NATTEN_SUCCESS &&
                                  (r[i].pruned == r[i - 1].pruned ? r[i].time_ms >= r[i - 1].time_ms
                                                                  : r[i].pruned && !r[i - 1].pruned));
                    else ck_assert(r[i].time_ms < 0 && r[i].reason[0] != '\0');
                }
                /* the second call is remembered: nothing is measured again */
                ck_assert_int_eq(tc_run(ctx, &io), NATTEN_SUCCESS);
                ck_assert_int_eq(natten_context_tuning_report(ctx, r, 32, NULL, sig2, sizeof sig2), NATTEN_SUCCESS);
                ck_assert_str_eq(sig, sig2);
                tc_teardown(&io);
                problems++;
            }
    printf("measured %-12s: %d problems equal naive's results\n", tc_op_names[op], problems);
    natten_context_destroy(ctx);
}
END_TEST

/* ---- wisdom ----------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = malloc(1 << 20);
    ck_assert_ptr_nonnull(f);
    *len = fread(b, 1, (1 << 20) - 1, f);
    b[*len] = '\0';
    fclose(f);
    return b;
}

static void spit(const char *path, const char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    fclose(f);
}

static void tmp_path(char *buf, size_t len, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    snprintf(buf, len, "%s/natten-wisdom-%ld-%s", dir && *dir ? dir : "/tmp", (long)getpid(), tag);
}

/* A context that has measured a few problems; its wisdom in path. */
static natten_context *tuned_ctx(const char *path, tc_io *keep)
{
    natten_context *ctx = new_ctx();
    uint64_t rng = seed;
    ck_assert_int_eq(natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE), NATTEN_SUCCESS);
    for (int c = 0; c < 3; c++) {
        tc_io io;
        ck_assert(tc_setup(&io, &tc_cases[c].r, OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
        ck_assert_int_eq(tc_run(ctx, &io), NATTEN_SUCCESS);
        if (c == 0) *keep = io;
        else tc_teardown(&io);
    }
    ck_assert_msg(natten_wisdom_export(ctx, path) == NATTEN_SUCCESS, "%s", natten_last_error());
    return ctx;
}

static int remembered(natten_context *ctx, const tc_io *io)
{
    const DLTensor *t[NATTEN_ARG_COUNT];
    char text[4096];
    tensors_of(io, t);
    ck_assert_int_eq(natten_explain(ctx, (natten_op)io->op, &io->params, t, NULL, text, sizeof text), NATTEN_SUCCESS);
    return strstr(text, "remembered") != NULL;
}

START_TEST(wisdom_round_trip)
{
    char path[512], path2[512];
    size_t len, len2;
    char *a, *b;
    tc_io io;
    natten_context *ctx, *fresh = new_ctx();
    tmp_path(path, sizeof path, "a");
    tmp_path(path2, sizeof path2, "b");
    ctx = tuned_ctx(path, &io);
    ck_assert(remembered(ctx, &io));
    ck_assert(!remembered(fresh, &io));
    ck_assert_msg(natten_wisdom_import(fresh, path) == NATTEN_SUCCESS, "%s", natten_last_error());
    ck_assert(remembered(fresh, &io)); /* used in heuristic mode too */
    ck_assert_int_eq(tc_run(fresh, &io), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_wisdom_export(fresh, path2), NATTEN_SUCCESS);
    a = slurp(path, &len);
    b = slurp(path2, &len2);
    ck_assert_uint_eq(len, len2);
    ck_assert_msg(memcmp(a, b, len) == 0, "re-exported wisdom differs:\n%s\n---\n%s", a, b);
    ck_assert_msg(strncmp(a, "natten-wisdom 1\nlibrary ", 24) == 0, "%s", a);
    /* NATTEN_WISDOM loads it at creation */
    natten_context_destroy(fresh);
    setenv("NATTEN_WISDOM", path, 1);
    fresh = new_ctx();
    unsetenv("NATTEN_WISDOM");
    ck_assert(remembered(fresh, &io));
    /* an empty cache exports a valid, empty file */
    natten_context_destroy(fresh);
    fresh = new_ctx();
    ck_assert_int_eq(natten_wisdom_export(fresh, path2), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_wisdom_import(ctx, path2), NATTEN_SUCCESS);
    free(a);
    free(b);
    tc_teardown(&io);
    natten_context_destroy(ctx);
    natten_context_destroy(fresh);
    unlink(path);
    unlink(path2);
}
END_TEST

/* FNV-1a 64, as the format's end line (written independently of the library). */
static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)p[i]; h *= 1099511628211ull; }
    return h;
}

/* Replace the first occurrence of from with to, then fix the end line's
 * checksum so that only the salt is wrong. */
static size_t resalt(char *b, size_t len, const char *from, const char *to)
{
    char *at = strstr(b, from), *end;
    size_t head, n;
    int entries;
    ck_assert_ptr_nonnull(at);
    memmove(at + strlen(to), at + strlen(from), len - (size_t)(at - b) - strlen(from) + 1);
    memcpy(at, to, strlen(to));
    len = strlen(b);
    end = strstr(b, "\nend ") + 1;
    head = (size_t)(end - b);
    ck_assert_int_eq(sscanf(end, "end %d", &entries), 1);
    n = (size_t)snprintf(end, 64, "end %d %016llx\n", entries, (unsigned long long)fnv(b, head));
    return head + n;
}

static natten_status import_text(natten_context *ctx, const char *path, const char *b, size_t len)
{
    spit(path, b, len);
    return natten_wisdom_import(ctx, path);
}

START_TEST(wisdom_rejects_damage)
{
    char path[512], bad[512];
    size_t len;
    char *good, *b;
    tc_io io;
    natten_context *ctx, *fresh = new_ctx();
    int rejected = 0;
    tmp_path(path, sizeof path, "good");
    tmp_path(bad, sizeof bad, "bad");
    ctx = tuned_ctx(path, &io);
    good = slurp(path, &len);
    b = malloc(len + 256);
    /* every truncation */
    for (size_t n = 0; n < len; n++) {
        natten_status st = import_text(fresh, bad, good, n);
        ck_assert_msg(st == NATTEN_ERROR_INVALID_ARGUMENT, "truncated at %zu of %zu: %s", n, len,
                      natten_status_string(st));
        rejected++;
    }
    /* every single-byte change */
    for (size_t i = 0; i < len; i++) {
        memcpy(b, good, len);
        b[i] = (char)(b[i] == 'x' ? '0' : b[i] == '\n' ? ' ' : 'x');
        ck_assert_msg(import_text(fresh, bad, b, len) != NATTEN_SUCCESS, "byte %zu changed, still accepted", i);
        rejected++;
    }
    ck_assert(!remembered(fresh, &io)); /* nothing half-imported */
    /* garbage, binary, missing file */
    ck_assert_int_eq(import_text(fresh, bad, "hello\n", 6), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(import_text(fresh, bad, "\x00\xff\x01", 3), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_wisdom_import(fresh, "/nonexistent/dir/wisdom"), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(natten_last_error(), "cannot open") != NULL, "%s", natten_last_error());
    /* well-formed but foreign: another version, backend set, device, format */
    memcpy(b, good, len + 1);
    ck_assert_int_eq(import_text(fresh, bad, b, resalt(b, len, "\nlibrary ", "\nlibrary 9.")), NATTEN_ERROR_UNSUPPORTED);
    ck_assert_msg(strstr(natten_last_error(), "made by libnatten 9.") != NULL, "%s", natten_last_error());
    memcpy(b, good, len + 1);
    ck_assert_int_eq(import_text(fresh, bad, b, resalt(b, len, "\nbackends ", "\nbackends imaginary ")),
                     NATTEN_ERROR_UNSUPPORTED);
    memcpy(b, good, len + 1);
    ck_assert_int_eq(import_text(fresh, bad, b, resalt(b, len, "\ndevice cpu:0 ", "\ndevice cpu:0 Other CPU ")),
                     NATTEN_ERROR_UNSUPPORTED);
    ck_assert_msg(strstr(natten_last_error(), "Other CPU") != NULL, "%s", natten_last_error());
    memcpy(b, good, len + 1);
    ck_assert_int_eq(import_text(fresh, bad, b, resalt(b, len, "natten-wisdom 1", "natten-wisdom 2")),
                     NATTEN_ERROR_UNSUPPORTED);
    memcpy(b, good, len + 1); /* an unknown configuration name, in the first entry */
    {
        char be[64], cf[64], from[160], to[160];
        const char *e = strstr(b, "\nentry ");
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(sscanf(e, "\nentry %63s %63s", be, cf), 2);
        snprintf(from, sizeof from, "\nentry %s %s ", be, cf);
        snprintf(to, sizeof to, "\nentry %s no-such-config ", be);
        ck_assert_int_eq(import_text(fresh, bad, b, resalt(b, len, from, to)), NATTEN_ERROR_UNSUPPORTED);
        ck_assert_msg(strstr(natten_last_error(), "no-such-config") != NULL, "%s", natten_last_error());
    }
    ck_assert(!remembered(fresh, &io));
    /* a broken NATTEN_WISDOM file is ignored, not fatal */
    spit(bad, "natten-wisdom 1\nlibr", 20);
    setenv("NATTEN_WISDOM", bad, 1);
    natten_context_destroy(fresh);
    fresh = new_ctx();
    unsetenv("NATTEN_WISDOM");
    ck_assert(!remembered(fresh, &io));
    printf("wisdom: %d damaged files rejected\n", rejected);
    free(good);
    free(b);
    tc_teardown(&io);
    natten_context_destroy(ctx);
    natten_context_destroy(fresh);
    unlink(path);
    unlink(bad);
}
END_TEST

/* ---- eight threads, one context ----------------------------------------------------- */

#define THREADS 8
#define ROUNDS 6

typedef struct worker {
    natten_context *ctx;
    int id, failures;
    char msg[512];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    uint64_t rng = seed ^ (uint64_t)(w->id * 7919);
    for (int round = 0; round < ROUNDS; round++) {
        /* threads share some signatures (same case) and differ in others */
        int c = (w->id + round) % 4;
        tc_op op = round % 2 ? OP_FNA : OP_QK;
        tc_io io, ref;
        uint64_t r2 = rng;
        double *want;
        natten_context *naive;
        natten_status st;
        if (!tc_setup(&io, &tc_cases[c].r, op, tt_dtype("float64"), TT_COMPACT, kDLCPU, &rng) ||
            !tc_setup(&ref, &tc_cases[c].r, op, tt_dtype("float64"), TT_COMPACT, kDLCPU, &r2)) {
            w->failures++;
            snprintf(w->msg, sizeof w->msg, "setup failed");
            return NULL;
        }
        if ((st = tc_run(w->ctx, &io)) != NATTEN_SUCCESS) {
            w->failures++;
            snprintf(w->msg, sizeof w->msg, "run: %s", natten_last_error());
        }
        if (natten_context_create(&naive) == NATTEN_SUCCESS && natten_context_set_backend(naive, "naive") == 0 &&
            tc_run(naive, &ref) == NATTEN_SUCCESS) {
            for (int x = 0; x < R_COUNT; x++) {
                tt_err e;
                if (!io.t[x] || !(io.outputs & (1u << x))) continue;
                want = tt_to_double(ref.t[x]);
                e = tt_compare(io.t[x], want);
                if (e.bad || e.norm > 1e-10) {
                    w->failures++;
                    snprintf(w->msg, sizeof w->msg, "%s %s differs: %.3g", tc_op_names[op], tc_role_names[x], e.norm);
                }
                free(want);
            }
        }
        natten_context_destroy(naive);
        if (w->id == 0) { /* inspection and export race with the tuning */
            natten_tuning_result r[8];
            char path[512];
            tmp_path(path, sizeof path, "threads");
            natten_context_tuning_report(w->ctx, r, 8, NULL, NULL, 0);
            if (natten_wisdom_export(w->ctx, path) != NATTEN_SUCCESS) {
                w->failures++;
                snprintf(w->msg, sizeof w->msg, "export: %s", natten_last_error());
            }
            unlink(path);
        }
        tc_teardown(&io);
        tc_teardown(&ref);
    }
    return NULL;
}

START_TEST(concurrent_tuning)
{
    pthread_t th[THREADS];
    worker w[THREADS];
    natten_context *ctx = new_ctx();
    ck_assert_int_eq(natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE), NATTEN_SUCCESS);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){ctx, i, 0, ""};
        ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++) ck_assert_msg(w[i].failures == 0, "thread %d: %s", i, w[i].msg);
    printf("selection: %d threads x %d rounds of measured selection on one context agree with naive\n", THREADS,
           ROUNDS);
    natten_context_destroy(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("selection");
    TCase *tc = tcase_create("selection");
    SRunner *sr;
    int failed, n = natten_backend_count();
    seed = tt_seed();
    printf("check_selection: seed %llu (set NATTEN_TEST_SEED to repeat), %d backends\n",
           (unsigned long long)seed, n);
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, pick_accepts, 0, OP_COUNT);
    tcase_add_test(tc, explain_without_data);
    tcase_add_test(tc, forced_unknown_name);
    tcase_add_test(tc, forced_configuration);
    tcase_add_loop_test(tc, forced_refusal_is_an_error, 0, n);
    tcase_add_test(tc, tuning_mode_settings);
    tcase_add_loop_test(tc, measured_equals_naive, 0, OP_COUNT);
    tcase_add_test(tc, wisdom_round_trip);
    tcase_add_test(tc, wisdom_rejects_damage);
    tcase_add_test(tc, concurrent_tuning);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
