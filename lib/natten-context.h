/* natten-context.h - private: the context structure (lib/ only). */
#ifndef NATTEN_CONTEXT_H
#define NATTEN_CONTEXT_H

#include <stdatomic.h>

struct natten_context {
    const natten_backend *forced;   /* NULL = automatic selection */
    int num_threads;
    void *stream;
    int verbose;                    /* NATTEN_VERBOSE: print picks and refusals */
    _Atomic(const natten_backend *) last;
};

#endif
