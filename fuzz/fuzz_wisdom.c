/*
 * fuzz_wisdom.c - libFuzzer target: the wisdom-file parser (lib/wisdom.c).
 *
 * The first byte chooses a mode, the rest is the file.  In fix-up mode the
 * target rewrites the file's last "end <n> ..." line with the correct FNV-1a
 * checksum of everything before it, so that the fuzzer gets past the checksum
 * and into the entries, devices and header rules it guards.
 *
 * Each input is parsed twice through natten_wisdom_parse (internal: the
 * target links the static library), which must either fail with a message
 * or succeed with every string terminated inside its field and the counts in
 * range, identically both times.  The same bytes are also imported through
 * the public natten_wisdom_import (a file under /tmp): a failure must leave
 * a message; a success (the salt matched this machine) must export and
 * import again.  ASan, UBSan and LSan watch every byte.
 */
#include "natten-impl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_wisdom: %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                             \
            fprintf(stderr, "\n");                                                    \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Rewrite the last line starting "end " as "end <count> <checksum>\n". */
static size_t fix_checksum(char *buf, size_t len, size_t cap)
{
    size_t start = len, i, n;
    char count[16];
    for (i = len; i-- > 0;)
        if ((i == 0 || buf[i - 1] == '\n') && len - i >= 4 && memcmp(buf + i, "end ", 4) == 0) {
            start = i;
            break;
        }
    if (start == len) return len;
    for (n = 0, i = start + 4; i < len && n < sizeof count - 1 && buf[i] >= '0' && buf[i] <= '9'; i++)
        count[n++] = buf[i];
    count[n] = '\0';
    if (n == 0) { count[0] = '0'; count[1] = '\0'; }
    n = (size_t)snprintf(buf + start, cap - start, "end %s %016llx\n", count,
                         (unsigned long long)fnv1a(buf, start));
    return start + n;
}

static int terminated(const char *s, size_t cap) { return memchr(s, '\0', cap) != NULL; }

static void check_parsed(const natten_wisdom *w)
{
    CHECK(w->format == 1, "format %d", w->format);
    CHECK(terminated(w->library, sizeof w->library) && terminated(w->backends, sizeof w->backends),
          "header strings not terminated");
    CHECK(w->n_devices >= 0 && w->n_devices <= NATTEN_WISDOM_MAX_DEVICES, "n_devices %d", w->n_devices);
    CHECK(w->n_entries >= 0 && w->n_entries <= NATTEN_WISDOM_MAX_ENTRIES, "n_entries %d", w->n_entries);
    CHECK(w->n_entries == 0 || w->entry != NULL, "entries without storage");
    for (int i = 0; i < w->n_devices; i++)
        CHECK(terminated(w->device[i].id, sizeof w->device[i].id) &&
              terminated(w->device[i].name, sizeof w->device[i].name), "device %d not terminated", i);
    for (int i = 0; i < w->n_entries; i++) {
        const natten_wisdom_entry *e = &w->entry[i];
        CHECK(terminated(e->sig, sizeof e->sig) && terminated(e->backend, sizeof e->backend) &&
              terminated(e->config, sizeof e->config), "entry %d not terminated", i);
        CHECK(e->ns >= 0, "entry %d: ns %lld", i, (long long)e->ns);
    }
}

static natten_context *ctx;
static char path_in[64], path_out[64];

static void cleanup(void)
{
    unlink(path_in);
    unlink(path_out);
    natten_context_destroy(ctx);
}

static int write_file(const char *path, const char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) return 0;
    if (len && fwrite(buf, 1, len, f) != len) { fclose(f); return 0; }
    return fclose(f) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;
    size_t len, cap;
    natten_wisdom w1, w2;
    natten_status s1, s2, si;

    if (ctx == NULL) {
        CHECK(natten_context_create(&ctx) == NATTEN_SUCCESS, "context: %s", natten_last_error());
        snprintf(path_in, sizeof path_in, "/tmp/fuzz_wisdom.%d.in", (int)getpid());
        snprintf(path_out, sizeof path_out, "/tmp/fuzz_wisdom.%d.out", (int)getpid());
        atexit(cleanup);
    }
    if (size == 0) return 0;
    cap = size + 64;
    buf = malloc(cap);
    CHECK(buf != NULL, "out of memory");
    len = size - 1;
    memcpy(buf, data + 1, len);
    if (data[0] & 1) len = fix_checksum(buf, len, cap);

    s1 = natten_wisdom_parse(buf, len, &w1);
    s2 = natten_wisdom_parse(buf, len, &w2);
    CHECK(s1 == s2, "two parses disagree: %d then %d", (int)s1, (int)s2);
    if (s1 != NATTEN_SUCCESS) {
        CHECK(natten_last_error()[0] != '\0', "parse failed without a message");
        CHECK(w1.entry == NULL && w2.entry == NULL, "failed parse left entries");
    } else {
        check_parsed(&w1);
        CHECK(w1.n_entries == w2.n_entries && w1.n_devices == w2.n_devices, "two parses differ in counts");
        for (int i = 0; i < w1.n_entries; i++) /* field by field: bytes after a terminator are unset */
            CHECK(strcmp(w1.entry[i].sig, w2.entry[i].sig) == 0 && strcmp(w1.entry[i].backend, w2.entry[i].backend) == 0 &&
                  strcmp(w1.entry[i].config, w2.entry[i].config) == 0 && w1.entry[i].ns == w2.entry[i].ns,
                  "two parses give different entry %d", i);
    }
    natten_wisdom_release(&w1);
    natten_wisdom_release(&w2);

    /* through the public API, from a file */
    if (data[0] & 2) {
        CHECK(write_file(path_in, buf, len), "cannot write %s", path_in);
        si = natten_wisdom_import(ctx, path_in);
        if (si != NATTEN_SUCCESS) {
            CHECK(natten_last_error()[0] != '\0', "import failed without a message");
        } else {
            CHECK(s1 == NATTEN_SUCCESS, "import accepted what the parser refused");
            CHECK(natten_wisdom_export(ctx, path_out) == NATTEN_SUCCESS, "export: %s", natten_last_error());
            CHECK(natten_wisdom_import(ctx, path_out) == NATTEN_SUCCESS, "re-import of the export: %s",
                  natten_last_error());
            /* start the next input from an empty cache */
            natten_context_destroy(ctx);
            CHECK(natten_context_create(&ctx) == NATTEN_SUCCESS, "context: %s", natten_last_error());
        }
    }
    free(buf);
    return 0;
}
