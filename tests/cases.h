/*
 * cases.h - the shared problem list and op runner of the test suites: build
 * every tensor an op needs (inputs random, outputs NaN-poisoned) in a chosen
 * dtype, layout and device, run it through the public API, and compute the
 * dense reference of its outputs from the very values the inputs hold.
 */
#ifndef NATTEN_CASES_H
#define NATTEN_CASES_H

#include "testutil.h"

typedef enum { R_Q, R_K, R_V, R_ATTN, R_RPB, R_OUT, R_LSE, R_DOUT, R_DATTN, R_DQ, R_DK, R_DV, R_DRPB,
               R_COUNT } tc_role;
typedef enum { OP_QK, OP_QK_BW, OP_AV, OP_AV_BW, OP_FNA, OP_FNA_BW, OP_COUNT } tc_op;

extern const char *const tc_op_names[OP_COUNT];
extern const char *const tc_role_names[R_COUNT];

typedef struct tc_case {
    const char *name;
    ref_problem r;          /* scale 0 here means the default 1/sqrt(D) */
} tc_case;

extern const tc_case tc_cases[];
extern const int tc_ncases;

typedef struct tc_io {
    ref_problem r;          /* as run: Hkv = H for unfused ops, scale resolved */
    tc_op op;
    natten_params params;
    tt *t[R_COUNT];         /* NULL where the op does not take the role */
    unsigned outputs;       /* bit per role the op writes */
} tc_io;

/* Make every tensor of op for case c.  Returns 0 on allocation failure. */
int tc_setup(tc_io *io, const ref_problem *c, tc_op op, DLDataType dt, tt_layout layout,
             DLDeviceType dev, uint64_t *rng);
void tc_teardown(tc_io *io);
/* Call op's public function with the tensors T (NULL where absent). */
natten_status tc_call(natten_context *ctx, tc_op op, const natten_params *p, DLTensor *const T[R_COUNT]);
/* Poison the outputs, run the op, download the outputs. */
natten_status tc_run(natten_context *ctx, tc_io *io);
/* Compare each output of io (the roles in io->outputs) with the same role of
 * ref, a run of the same op on the same inputs (any backend, layout or device;
 * both already downloaded).  Returns the first role with NaN/inf mismatches or
 * a normalised error above limit, its comparison in *e; -1 when all match. */
int tc_compare_runs(const tc_io *io, const tc_io *ref, double limit, tt_err *e);
/* Dense reference of each output role (double arrays, logical order; caller frees). */
void tc_reference(const tc_io *io, double *ref[R_COUNT]);
void tc_params(const ref_problem *r, natten_params *p);
/* Short description "1d L=16 K=7 d=1 s=1 c=0 ..." */
void tc_describe(const ref_problem *r, char *buf, size_t len);

#endif
