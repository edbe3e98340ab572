/*
 * wisdom.c - a context's remembered winners as a text file (docs/selection.md):
 *
 *   natten-wisdom 1
 *   library 0.1.0
 *   backends cuda_tc openmp naive
 *   device cpu:0 Intel(R) Xeon(R) Platinum 8480+ (16 threads)
 *   entry openmp 8x64 1234567 cpu:0/fna_forward/float32/r2/b1/h4,4/...
 *   end 1 9f3c0a12de4b7781
 *
 * The header salts the file: another library version, another set of
 * compiled-in backends or another device name makes it stale, and a stale
 * file is refused, not trusted.  The end line counts the entries and carries
 * the FNV-1a 64 hash of every byte before it, so that a truncated or edited
 * file is refused too.  The parser is a pure function over a buffer (it is
 * fuzzed); checking the salt against this machine is a separate step.
 */
#include "natten-impl.h"
#include "natten-context.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FORMAT 1
#define MAX_LINE 1024
#define MAX_FILE ((size_t)64 << 20)

/* ---- the parser ------------------------------------------------------------ */

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Characters of a token (signature, backend, config, device id): ASCII only,
 * no locale. */
static int tok_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("_:,./=+-", c) != NULL);
}

typedef struct cursor {
    const char *s, *end;  /* the current line, without its newline */
    int line;
} cursor;

#define BAD(cur, ...) bad_line((cur)->line, __VA_ARGS__)

static natten_status bad_line(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static natten_status bad_line(int line, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "wisdom: line %d: %s", line, msg);
}

/* Take the word expected at the start of the line, followed by one space. */
static int take_word(cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->s) <= n || memcmp(c->s, word, n) != 0 || c->s[n] != ' ') return 0;
    c->s += n + 1;
    return 1;
}

/* Step over the one space between two fields; a trailing space stays, so
 * that at_end() refuses it. */
static void skip_separator(cursor *c)
{
    if (c->s + 1 < c->end && *c->s == ' ') c->s++;
}

/* Copy a token (up to a space or the line's end) into out[cap]; 0 if it is
 * empty, too long or has a character outside tok_char. */
static int take_token(cursor *c, char *out, size_t cap)
{
    size_t n = 0;
    while (c->s + n < c->end && c->s[n] != ' ') {
        if (!tok_char(c->s[n]) || n + 1 >= cap) return 0;
        out[n] = c->s[n];
        n++;
    }
    if (n == 0) return 0;
    out[n] = '\0';
    c->s += n;
    skip_separator(c);
    return 1;
}

/* The rest of the line, printable, into out[cap]. */
static int take_rest(cursor *c, char *out, size_t cap)
{
    size_t n = (size_t)(c->end - c->s);
    if (n == 0 || n >= cap) return 0;
    memcpy(out, c->s, n);
    out[n] = '\0';
    c->s = c->end;
    return 1;
}

static int take_uint(cursor *c, int64_t *v, int digits_max)
{
    int n = 0;
    int64_t x = 0;
    while (c->s < c->end && *c->s >= '0' && *c->s <= '9') {
        if (++n > digits_max) return 0;
        x = x * 10 + (*c->s++ - '0');
    }
    if (n == 0 || (c->s < c->end && *c->s != ' ')) return 0;
    if (n > 1 && c->s[-n] == '0') return 0; /* one spelling per number: no leading zeros */
    skip_separator(c);
    *v = x;
    return 1;
}

static int at_end(const cursor *c) { return c->s == c->end; }

/* Next line of buf into c; 0 at the end of the buffer.  A line must end in a
 * newline, be short, and hold printable ASCII only. */
static natten_status next_line(const char *buf, size_t len, size_t *pos, cursor *c, int *have)
{
    const char *s = buf + *pos, *nl;
    *have = 0;
    if (*pos >= len) return NATTEN_SUCCESS;
    nl = memchr(s, '\n', len - *pos);
    c->line++;
    if (nl == NULL) return BAD(c, "no newline at the end: the file is truncated");
    if (nl - s > MAX_LINE) return BAD(c, "longer than %d characters", MAX_LINE);
    for (const char *q = s; q < nl; q++)
        if (*q < 0x20 || *q > 0x7e) return BAD(c, "byte 0x%02x at column %d is not printable ASCII",
                                               (unsigned char)*q, (int)(q - s) + 1);
    c->s = s;
    c->end = nl;
    *pos = (size_t)(nl - buf) + 1;
    *have = 1;
    return NATTEN_SUCCESS;
}

static natten_status parse_header(cursor *c, int which, natten_wisdom *w)
{
    int64_t v;
    switch (which) {
    case 0:
        if (!take_word(c, "natten-wisdom") || !take_uint(c, &v, 6) || !at_end(c))
            return BAD(c, "not a libnatten wisdom file (want \"natten-wisdom %d\")", FORMAT);
        if (v != FORMAT)
            return natten_error(NATTEN_ERROR_UNSUPPORTED, "wisdom: format %lld, this library reads "
                                "format %d", (long long)v, FORMAT);
        w->format = (int)v;
        return NATTEN_SUCCESS;
    case 1:
        if (!take_word(c, "library") || !take_token(c, w->library, sizeof w->library) || !at_end(c))
            return BAD(c, "want \"library <version>\"");
        return NATTEN_SUCCESS;
    default:
        if (!take_word(c, "backends") || !take_rest(c, w->backends, sizeof w->backends))
            return BAD(c, "want \"backends <name>...\"");
        return NATTEN_SUCCESS;
    }
}

static natten_status parse_device(cursor *c, natten_wisdom *w)
{
    int i = w->n_devices;
    if (i == NATTEN_WISDOM_MAX_DEVICES) return BAD(c, "more than %d devices", NATTEN_WISDOM_MAX_DEVICES);
    if (!take_token(c, w->device[i].id, sizeof w->device[i].id) ||
        !take_rest(c, w->device[i].name, sizeof w->device[i].name))
        return BAD(c, "want \"device <id> <name>\"");
    for (int j = 0; j < i; j++)
        if (strcmp(w->device[j].id, w->device[i].id) == 0)
            return BAD(c, "device %s is declared twice", w->device[i].id);
    w->n_devices++;
    return NATTEN_SUCCESS;
}

static natten_status parse_entry(cursor *c, natten_wisdom *w, int *cap)
{
    natten_wisdom_entry e;
    size_t dev_len;
    int known = 0;
    if (!take_token(c, e.backend, sizeof e.backend) || !take_token(c, e.config, sizeof e.config) ||
        !take_uint(c, &e.ns, 18) || !take_token(c, e.sig, sizeof e.sig) || !at_end(c))
        return BAD(c, "want \"entry <backend> <config> <nanoseconds> <signature>\"");
    dev_len = strcspn(e.sig, "/");
    for (int j = 0; j < w->n_devices; j++)
        known |= strlen(w->device[j].id) == dev_len && memcmp(w->device[j].id, e.sig, dev_len) == 0;
    if (!known) return BAD(c, "the signature's device '%.*s' has no device line", (int)dev_len, e.sig);
    if (w->n_entries == NATTEN_WISDOM_MAX_ENTRIES)
        return BAD(c, "more than %d entries", NATTEN_WISDOM_MAX_ENTRIES);
    if (w->n_entries == *cap) {
        int ncap = *cap ? 2 * *cap : 16;
        natten_wisdom_entry *grown = natten_malloc((size_t)ncap * sizeof *grown);
        if (grown == NULL) return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "wisdom: out of memory");
        if (w->n_entries) memcpy(grown, w->entry, (size_t)w->n_entries * sizeof *grown);
        natten_free(w->entry);
        w->entry = grown;
        *cap = ncap;
    }
    w->entry[w->n_entries++] = e;
    return NATTEN_SUCCESS;
}

static natten_status parse_end(cursor *c, const char *buf, size_t line_start, const natten_wisdom *w)
{
    int64_t n;
    char hex[20];
    unsigned long long want;
    char *endp;
    if (!take_uint(c, &n, 9) || !take_token(c, hex, sizeof hex) || !at_end(c) || strlen(hex) != 16 ||
        strspn(hex, "0123456789abcdef") != 16)
        return BAD(c, "want \"end <entries> <16 hex digits>\"");
    if (n != w->n_entries)
        return BAD(c, "says %lld entries but the file has %d: it was truncated or edited", (long long)n,
                   w->n_entries);
    want = strtoull(hex, &endp, 16);
    if ((uint64_t)want != fnv1a(buf, line_start))
        return BAD(c, "checksum mismatch: the file was damaged or edited");
    return NATTEN_SUCCESS;
}

natten_status natten_wisdom_parse(const char *buf, size_t len, natten_wisdom *w)
{
    size_t pos = 0, start;
    cursor c = {NULL, NULL, 0};
    int have, cap = 0, ended = 0;
    natten_status st = NATTEN_SUCCESS;

    memset(w, 0, sizeof *w);
    if (buf == NULL && len > 0) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "wisdom: buffer is NULL");
    while (st == NATTEN_SUCCESS) {
        start = pos;
        if ((st = next_line(buf, len, &pos, &c, &have)) || !have) break;
        if (ended) {
            st = BAD(&c, "text after the end line");
        } else if (c.line <= 3) {
            st = parse_header(&c, c.line - 1, w);
        } else if (c.s < c.end && c.s[0] == '#') {
            continue; /* a comment */
        } else if (take_word(&c, "device")) {
            st = w->n_entries ? BAD(&c, "device line after the first entry") : parse_device(&c, w);
        } else if (take_word(&c, "entry")) {
            st = parse_entry(&c, w, &cap);
        } else if (take_word(&c, "end")) {
            st = parse_end(&c, buf, start, w);
            ended = 1;
        } else {
            st = BAD(&c, "unknown line; want device, entry or end");
        }
    }
    if (st == NATTEN_SUCCESS && !ended)
        st = c.line < 3 ? natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "wisdom: %s", c.line ? "the header "
                                       "is incomplete: the file is truncated" : "the file is empty")
                        : natten_error(NATTEN_ERROR_INVALID_ARGUMENT,
                                       "wisdom: no end line after line %d: the file is truncated", c.line);
    if (st != NATTEN_SUCCESS) natten_wisdom_release(w);
    return st;
}

void natten_wisdom_release(natten_wisdom *w)
{
    natten_free(w->entry);
    w->entry = NULL;
    w->n_entries = 0;
}

/* ---- this machine: the salt ------------------------------------------------ */

static void cpu_name(char *buf, size_t len)
{
    char line[512];
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(buf, len, "cpu");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':'), *v;
        if (strncmp(line, "model name", 10) != 0 || colon == NULL) continue;
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++) {}
        v[strcspn(v, "\n")] = '\0';
        snprintf(buf, len, "%.100s", v);
        break;
    }
    if (f) fclose(f);
    if (n > 0) {
        size_t k = strlen(buf);
        snprintf(buf + k, len - k, " (%ld threads)", n);
    }
    for (char *q = buf; *q; q++) /* keep it a printable line */
        if (*q < 0x20 || *q > 0x7e) *q = '?';
}

int natten_device_name(const char *id, char *buf, size_t len)
{
    DLDeviceType type;
    int dev;
    if (strncmp(id, "cpu:", 4) == 0) {
        cpu_name(buf, len);
        return 1;
    }
    if (sscanf(id, "cuda:%d", &dev) == 1) type = kDLCUDA;
    else if (sscanf(id, "rocm:%d", &dev) == 1) type = kDLROCM;
    else return 0;
    for (int i = 0; i < natten_backend_count(); i++) {
        const natten_backend *b = natten_backend_at(i);
        const char *why;
        if ((DLDeviceType)b->device_type == type && b->device_name && natten_backend_usable(b, &why) &&
            b->device_name(dev, buf, len))
            return 1;
    }
    return 0;
}

static void library_version(char *buf, size_t len)
{
    snprintf(buf, len, "%d.%d.%d", NATTEN_VERSION_MAJOR, NATTEN_VERSION_MINOR, NATTEN_VERSION_PATCH);
}

static void backend_set(char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < natten_backend_count() && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "", natten_backend_at(i)->name);
}

/* Refuse a well-formed file made by another build or on another machine. */
static natten_status check_salt(const natten_wisdom *w)
{
    char here[256];
    library_version(here, sizeof here);
    if (strcmp(w->library, here) != 0)
        return natten_error(NATTEN_ERROR_UNSUPPORTED, "wisdom: made by libnatten %s, this is %s", w->library,
                            here);
    backend_set(here, sizeof here);
    if (strcmp(w->backends, here) != 0)
        return natten_error(NATTEN_ERROR_UNSUPPORTED, "wisdom: made with backends '%s', this build has '%s'",
                            w->backends, here);
    for (int i = 0; i < w->n_devices; i++) {
        if (!natten_device_name(w->device[i].id, here, sizeof here))
            return natten_error(NATTEN_ERROR_UNSUPPORTED, "wisdom: made for device %s (%s), which this "
                                "machine does not have", w->device[i].id, w->device[i].name);
        if (strcmp(w->device[i].name, here) != 0)
            return natten_error(NATTEN_ERROR_UNSUPPORTED, "wisdom: made for %s = '%s', here it is '%s'",
                                w->device[i].id, w->device[i].name, here);
    }
    return NATTEN_SUCCESS;
}

static int find_config(const natten_backend *b, const char *name)
{
    for (int k = 0; k < natten_config_count(b); k++)
        if (strcmp(natten_config_name(b, k), name) == 0) return k;
    return -1;
}

/* ---- import and export ------------------------------------------------------- */

static natten_status read_file(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 16, n = 0;
    char *b;
    if (f == NULL)
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "wisdom: cannot open '%s': %s", path, strerror(errno));
    b = natten_malloc(cap);
    while (b != NULL) {
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        if (cap >= MAX_FILE) {
            natten_free(b);
            fclose(f);
            return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "wisdom: '%s' is larger than %zu bytes",
                                path, MAX_FILE);
        }
        {
            char *grown = natten_malloc(cap * 2);
            if (grown) memcpy(grown, b, n);
            natten_free(b);
            b = grown;
            cap *= 2;
        }
    }
    if (b == NULL) {
        fclose(f);
        return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "wisdom: cannot read '%s' into memory", path);
    }
    if (ferror(f)) {
        natten_free(b);
        fclose(f);
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "wisdom: error reading '%s'", path);
    }
    fclose(f);
    *buf = b;
    *len = n;
    return NATTEN_SUCCESS;
}

natten_status natten_wisdom_import(natten_context *ctx, const char *path)
{
    natten_wisdom w;
    natten_tuned *t = NULL;
    char *buf = NULL;
    size_t len = 0;
    natten_status st;

    natten_clear_error();
    if (ctx == NULL || path == NULL)
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "wisdom import: %s is NULL", ctx ? "path" : "ctx");
    if ((st = read_file(path, &buf, &len))) return st;
    st = natten_wisdom_parse(buf, len, &w);
    natten_free(buf);
    if (st) return st;
    if ((st = check_salt(&w)) == NATTEN_SUCCESS &&
        (t = natten_malloc((size_t)w.n_entries * sizeof *t)) == NULL)
        st = natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "wisdom: out of memory");
    for (int i = 0; st == NATTEN_SUCCESS && i < w.n_entries; i++) {
        const natten_wisdom_entry *e = &w.entry[i];
        if ((t[i].backend = natten_backend_find(e->backend)) == NULL)
            st = natten_error(NATTEN_ERROR_UNSUPPORTED, "wisdom: entry %d names backend '%s', which this "
                              "build lacks", i + 1, e->backend);
        else if ((t[i].config = find_config(t[i].backend, e->config)) < 0)
            st = natten_error(NATTEN_ERROR_UNSUPPORTED, "wisdom: entry %d names configuration '%s' of "
                              "backend %s, which it lacks", i + 1, e->config, e->backend);
        snprintf(t[i].sig, sizeof t[i].sig, "%s", e->sig);
        t[i].ns = e->ns;
    }
    for (int i = 0; st == NATTEN_SUCCESS && i < w.n_entries; i++) st = natten_tuned_put(ctx, &t[i]);
    natten_free(t);
    natten_wisdom_release(&w);
    return st;
}

/* Append printf-style text to a growing buffer; oom set when out of memory. */
typedef struct text { char *s; size_t n, cap; int oom; } text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    int k;
    if (t->oom) return;
    for (;;) {
        va_start(ap, fmt);
        k = vsnprintf(t->s + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
        if (k < 0) { t->oom = 1; return; }
        if ((size_t)k < t->cap - t->n) break;
        {
            size_t cap = 2 * t->cap + (size_t)k + 64;
            char *grown = natten_malloc(cap);
            if (grown == NULL) { t->oom = 1; return; }
            memcpy(grown, t->s, t->n + 1);
            natten_free(t->s);
            t->s = grown;
            t->cap = cap;
        }
    }
    t->n += (size_t)k;
}

natten_status natten_wisdom_export(natten_context *ctx, const char *path)
{
    text t = {NULL, 0, 0, 0};
    char s[256], devs[NATTEN_WISDOM_MAX_DEVICES][32];
    int n_devs = 0, n;
    natten_tuned *copy;
    FILE *f;
    natten_status st = NATTEN_SUCCESS;

    natten_clear_error();
    if (ctx == NULL || path == NULL)
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "wisdom export: %s is NULL", ctx ? "path" : "ctx");
    pthread_mutex_lock(&ctx->lock);
    n = ctx->n_tuned;
    if ((copy = natten_malloc((size_t)n * sizeof *copy)) != NULL && n)
        memcpy(copy, ctx->tuned, (size_t)n * sizeof *copy);
    pthread_mutex_unlock(&ctx->lock);
    if (copy == NULL || (t.s = natten_malloc(t.cap = 4096)) == NULL) {
        natten_free(copy);
        return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "wisdom: out of memory");
    }
    t.s[0] = '\0';
    library_version(s, sizeof s);
    put(&t, "natten-wisdom %d\nlibrary %s\n", FORMAT, s);
    backend_set(s, sizeof s);
    put(&t, "backends %s\n", s);
    for (int i = 0; i < n; i++) { /* one device line per device the entries use */
        size_t k = strcspn(copy[i].sig, "/");
        int seen = 0;
        for (int j = 0; j < n_devs; j++) seen |= strlen(devs[j]) == k && memcmp(devs[j], copy[i].sig, k) == 0;
        if (seen || n_devs == NATTEN_WISDOM_MAX_DEVICES || k >= sizeof devs[0]) continue;
        memcpy(devs[n_devs], copy[i].sig, k);
        devs[n_devs][k] = '\0';
        if (!natten_device_name(devs[n_devs], s, sizeof s)) snprintf(s, sizeof s, "unknown");
        put(&t, "device %s %s\n", devs[n_devs++], s);
    }
    for (int i = 0; i < n; i++)
        put(&t, "entry %s %s %lld %s\n", copy[i].backend->name,
            natten_config_name(copy[i].backend, copy[i].config), (long long)copy[i].ns, copy[i].sig);
    if (!t.oom) put(&t, "end %d %016llx\n", n, (unsigned long long)fnv1a(t.s, t.n));
    natten_free(copy);
    if (t.oom) {
        natten_free(t.s);
        return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "wisdom: out of memory");
    }
    if ((f = fopen(path, "wb")) == NULL) {
        st = natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "wisdom: cannot create '%s': %s", path, strerror(errno));
    } else {
        if (fwrite(t.s, 1, t.n, f) != t.n) st = natten_error(NATTEN_ERROR_INVALID_ARGUMENT,
                                                               "wisdom: cannot write '%s': %s", path, strerror(errno));
        if (fclose(f) != 0 && st == NATTEN_SUCCESS)
            st = natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "wisdom: cannot write '%s': %s", path, strerror(errno));
    }
    natten_free(t.s);
    return st;
}
