/*
 * _C.c - the natten Python extension: a thin layer over <natten.h>.
 *
 * Tensors arrive as DLPack capsules (the Python side calls __dlpack__), either
 * the legacy "dltensor" (DLManagedTensor) or the DLPack 1.x
 * "dltensor_versioned" (DLManagedTensorVersioned).  The capsules are only
 * borrowed for the duration of one call: we never rename them, so the
 * producer's capsule destructor still owns the memory and frees it when the
 * Python side drops the capsule.  No data is copied.
 *
 * Errors: a failed natten_* call raises one of the exception classes below,
 * chosen by its natten_status, with natten_last_error() as the message.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <natten.h>
#include <stdint.h>
#include <string.h>

/* DLPack 1.x versioned managed tensor.  Declared here because the installed
 * <dlpack/dlpack.h> may predate it (Debian ships 0.6); the DLTensor inside is
 * the same struct in 0.6, 0.8 and 1.x. */
typedef struct {
    uint32_t major;
    uint32_t minor;
} pynatten_dlpack_version;

typedef struct pynatten_managed_versioned {
    pynatten_dlpack_version version;
    void *manager_ctx;
    void (*deleter)(struct pynatten_managed_versioned *self);
    uint64_t flags;
    DLTensor dl_tensor;
} pynatten_managed_versioned;

#define PYNATTEN_DLPACK_FLAG_READ_ONLY (1ULL << 0)

/* Exception classes, indexed by natten_status (0 = success, unused). */
static PyObject *exc_base;       /* natten.NattenError(RuntimeError) */
static PyObject *exc_invalid;    /* InvalidArgumentError(NattenError, ValueError) */
static PyObject *exc_unsupported;/* UnsupportedError(NattenError, NotImplementedError) */
static PyObject *exc_unavailable;/* BackendUnavailableError(NattenError) */

static PyObject *exc_for(natten_status st)
{
    switch (st) {
    case NATTEN_ERROR_INVALID_ARGUMENT: return exc_invalid;
    case NATTEN_ERROR_UNSUPPORTED: return exc_unsupported;
    case NATTEN_ERROR_BACKEND_UNAVAILABLE: return exc_unavailable;
    default: return exc_base;
    }
}

/* Raise the exception for st with this thread's natten message; returns NULL. */
static PyObject *raise_status(natten_status st, const char *where)
{
    PyObject *cls = exc_for(st), *exc, *code, *op;
    const char *msg = natten_last_error();
    int bad;
    exc = PyObject_CallFunction(cls, "s", (msg && msg[0]) ? msg : natten_status_string(st));
    if (exc == NULL) return NULL;
    code = PyLong_FromLong((long)st);
    op = PyUnicode_FromString(where);
    bad = code == NULL || op == NULL || PyObject_SetAttrString(exc, "status", code) < 0 ||
          PyObject_SetAttrString(exc, "op", op) < 0;
    Py_XDECREF(code);
    Py_XDECREF(op);
    if (bad) {
        Py_DECREF(exc);
        return NULL;
    }
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

/*
 * The DLTensor inside capsule obj (borrowed: valid while obj lives), or NULL
 * in *out when obj is None.  writable: the call writes this tensor, so a
 * read-only versioned capsule is refused.  Returns 0, or -1 with an exception.
 */
static int tensor_of(PyObject *obj, const char *role, int writable, DLTensor **out)
{
    const char *name;
    *out = NULL;
    if (obj == Py_None) return 0;
    if (!PyCapsule_CheckExact(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a DLPack capsule, got %.100s", role,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    name = PyCapsule_GetName(obj);
    if (name != NULL && strcmp(name, "dltensor") == 0) {
        DLManagedTensor *m = (DLManagedTensor *)PyCapsule_GetPointer(obj, "dltensor");
        if (m == NULL) return -1;
        *out = &m->dl_tensor;
        return 0;
    }
    if (name != NULL && strcmp(name, "dltensor_versioned") == 0) {
        pynatten_managed_versioned *m =
            (pynatten_managed_versioned *)PyCapsule_GetPointer(obj, "dltensor_versioned");
        if (m == NULL) return -1;
        if (m->version.major != 1) {
            PyErr_Format(PyExc_BufferError, "%s: DLPack major version %u is not supported (1 is)",
                         role, (unsigned)m->version.major);
            return -1;
        }
        if (writable && (m->flags & PYNATTEN_DLPACK_FLAG_READ_ONLY)) {
            PyErr_Format(PyExc_ValueError, "%s: the output tensor is read-only", role);
            return -1;
        }
        *out = &m->dl_tensor;
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "%s: capsule named '%s' is not an unconsumed DLPack tensor", role,
                 name ? name : "(null)");
    return -1;
}

/* params = (kernel_size, dilation, stride, is_causal, scale-or-None), each a
 * sequence of rank ints. */
static int params_of(PyObject *obj, natten_params *p)
{
    PyObject *ks, *dil, *st, *causal, *scale;
    int kernel[3];
    Py_ssize_t rank;
    natten_status s;
    if (!PyArg_ParseTuple(obj, "OOOOO;params must be (kernel_size, dilation, stride, is_causal, scale)",
                          &ks, &dil, &st, &causal, &scale))
        return -1;
    {
        PyObject *seqs[4] = {ks, dil, st, causal};
        int *dst[4] = {kernel, p->dilation, p->stride, p->is_causal};
        const char *names[4] = {"kernel_size", "dilation", "stride", "is_causal"};
        int tmp[4][3];
        rank = PySequence_Size(ks);
        if (rank < 1 || rank > 3) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "kernel_size has %zd entries; rank must be 1, 2 or 3", rank);
            return -1;
        }
        for (int j = 0; j < 4; j++) {
            if (PySequence_Size(seqs[j]) != rank) {
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_ValueError, "%s needs %zd entries (one per spatial axis)",
                                 names[j], rank);
                return -1;
            }
            for (Py_ssize_t i = 0; i < rank; i++) {
                PyObject *item = PySequence_GetItem(seqs[j], i);
                long v;
                if (item == NULL) return -1;
                v = PyLong_AsLong(item);
                Py_DECREF(item);
                if (v == -1 && PyErr_Occurred()) return -1;
                if (v < INT32_MIN || v > INT32_MAX) {
                    PyErr_Format(PyExc_ValueError, "%s[%zd]=%ld is out of range", names[j], i, v);
                    return -1;
                }
                tmp[j][i] = (int)v;
            }
        }
        kernel[0] = tmp[0][0];
        kernel[1] = rank > 1 ? tmp[0][1] : 1;
        kernel[2] = rank > 2 ? tmp[0][2] : 1;
        if ((s = natten_params_init(p, (int)rank, kernel))) return raise_status(s, "params"), -1;
        for (int j = 1; j < 4; j++)
            for (Py_ssize_t i = 0; i < rank; i++) dst[j][i] = tmp[j][i];
    }
    if (scale != Py_None) {
        double v = PyFloat_AsDouble(scale);
        if (v == -1.0 && PyErr_Occurred()) return -1;
        if ((s = natten_params_set_scale(p, v))) return raise_status(s, "params"), -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Context */

typedef struct {
    PyObject_HEAD
    natten_context *ctx;
} ContextObject;

static PyObject *Context_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    ContextObject *self;
    natten_status st;
    if (!PyArg_ParseTuple(args, ":Context")) return NULL;
    (void)kw;
    self = (ContextObject *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    if ((st = natten_context_create(&self->ctx))) {
        Py_DECREF(self);
        return raise_status(st, "natten_context_create");
    }
    return (PyObject *)self;
}

static void Context_dealloc(ContextObject *self)
{
    natten_context_destroy(self->ctx);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Context_set_backend(ContextObject *self, PyObject *arg)
{
    const char *name = NULL;
    natten_status st;
    if (arg != Py_None && (name = PyUnicode_AsUTF8(arg)) == NULL) return NULL;
    if ((st = natten_context_set_backend(self->ctx, name))) return raise_status(st, "set_backend");
    Py_RETURN_NONE;
}

static PyObject *Context_set_stream(ContextObject *self, PyObject *arg)
{
    void *stream = NULL;
    natten_status st;
    if (arg != Py_None) {
        stream = PyLong_AsVoidPtr(arg);
        if (stream == NULL && PyErr_Occurred()) return NULL;
    }
    if ((st = natten_context_set_stream(self->ctx, stream))) return raise_status(st, "set_stream");
    Py_RETURN_NONE;
}

static PyObject *Context_set_num_threads(ContextObject *self, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    natten_status st;
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < INT32_MIN || n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "num_threads is out of range");
        return NULL;
    }
    if ((st = natten_context_set_num_threads(self->ctx, (int)n))) return raise_status(st, "set_num_threads");
    Py_RETURN_NONE;
}

static PyObject *Context_last_backend(ContextObject *self, PyObject *unused)
{
    const char *name = natten_context_last_backend(self->ctx);
    (void)unused;
    if (name == NULL) Py_RETURN_NONE;
    return PyUnicode_FromString(name);
}

#ifdef PYNATTEN_HAVE_TUNING
/* Tuning and wisdom: present when natten.h declares them (setup.py checks). */
static PyObject *Context_set_tuning(ContextObject *self, PyObject *arg)
{
    long mode = PyLong_AsLong(arg);
    natten_status st;
    if (mode == -1 && PyErr_Occurred()) return NULL;
    if ((st = natten_context_set_tuning(self->ctx, (natten_tuning)mode))) return raise_status(st, "set_tuning");
    Py_RETURN_NONE;
}

static PyObject *wisdom_io(ContextObject *self, PyObject *arg, int export_)
{
    PyObject *path = NULL;
    natten_status st;
    if (!PyUnicode_FSConverter(arg, &path)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = export_ ? natten_wisdom_export(self->ctx, PyBytes_AS_STRING(path))
                 : natten_wisdom_import(self->ctx, PyBytes_AS_STRING(path));
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (st) return raise_status(st, export_ ? "wisdom_export" : "wisdom_import");
    Py_RETURN_NONE;
}

static PyObject *Context_wisdom_export(ContextObject *self, PyObject *arg) { return wisdom_io(self, arg, 1); }
static PyObject *Context_wisdom_import(ContextObject *self, PyObject *arg) { return wisdom_io(self, arg, 0); }

/* (signature, [(backend, config, status, time_ms, reason), ...]) */
static PyObject *Context_tuning_report(ContextObject *self, PyObject *unused)
{
    natten_tuning_result res[64];
    char sig[512];
    int count = 0;
    PyObject *list, *ret;
    natten_status st = natten_context_tuning_report(self->ctx, res, 64, &count, sig, sizeof sig);
    (void)unused;
    if (st) return raise_status(st, "tuning_report");
    if ((list = PyList_New(0)) == NULL) return NULL;
    for (int i = 0; i < count && i < 64; i++) {
        PyObject *row = Py_BuildValue("(ssids)", res[i].backend ? res[i].backend : "",
                                      res[i].config ? res[i].config : "", (int)res[i].status,
                                      res[i].time_ms, res[i].reason);
        if (row == NULL || PyList_Append(list, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(row);
    }
    ret = Py_BuildValue("(sN)", sig, list);
    return ret;
}
#endif

/*
 * One table drives all six ops: the op's name, its tensor roles in argument
 * order (after params), which of them it writes, and a caller that unpacks
 * the DLTensor array into the natten_* function.
 */
#define MAX_ROLES 12

typedef natten_status (*op_caller)(natten_context *ctx, const natten_params *p, DLTensor **t);

static natten_status call_qk_forward(natten_context *c, const natten_params *p, DLTensor **t)
{ return natten_qk_forward(c, p, t[0], t[1], t[2], t[3]); }
static natten_status call_qk_backward(natten_context *c, const natten_params *p, DLTensor **t)
{ return natten_qk_backward(c, p, t[0], t[1], t[2], t[3], t[4], t[5]); }
static natten_status call_av_forward(natten_context *c, const natten_params *p, DLTensor **t)
{ return natten_av_forward(c, p, t[0], t[1], t[2]); }
static natten_status call_av_backward(natten_context *c, const natten_params *p, DLTensor **t)
{ return natten_av_backward(c, p, t[0], t[1], t[2], t[3], t[4]); }
static natten_status call_fna_forward(natten_context *c, const natten_params *p, DLTensor **t)
{ return natten_fna_forward(c, p, t[0], t[1], t[2], t[3], t[4], t[5]); }
static natten_status call_fna_backward(natten_context *c, const natten_params *p, DLTensor **t)
{ return natten_fna_backward(c, p, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10]); }

typedef struct {
    const char *name;
    op_caller call;
    int n;
    const char *roles[MAX_ROLES];
    const char *outputs; /* one char per role: 'w' written, 'r' read */
#ifdef PYNATTEN_HAVE_EXPLAIN
    natten_op op;
    natten_arg args[MAX_ROLES]; /* natten_explain's slot of each role */
#endif
} op_desc;

#ifdef PYNATTEN_HAVE_EXPLAIN
#  define EXPLAIN(op, ...) , op, {__VA_ARGS__}
#else
#  define EXPLAIN(op, ...)
#endif

static const op_desc ops[] = {
    {"qk_forward", call_qk_forward, 4, {"q", "k", "rpb", "attn"}, "rrrw"
     EXPLAIN(NATTEN_OP_QK_FORWARD, NATTEN_ARG_Q, NATTEN_ARG_K, NATTEN_ARG_RPB, NATTEN_ARG_ATTN)},
    {"qk_backward", call_qk_backward, 6, {"d_attn", "q", "k", "d_q", "d_k", "d_rpb"}, "rrrwww"
     EXPLAIN(NATTEN_OP_QK_BACKWARD, NATTEN_ARG_D_ATTN, NATTEN_ARG_Q, NATTEN_ARG_K, NATTEN_ARG_D_Q,
             NATTEN_ARG_D_K, NATTEN_ARG_D_RPB)},
    {"av_forward", call_av_forward, 3, {"attn", "v", "out"}, "rrw"
     EXPLAIN(NATTEN_OP_AV_FORWARD, NATTEN_ARG_ATTN, NATTEN_ARG_V, NATTEN_ARG_OUT)},
    {"av_backward", call_av_backward, 5, {"d_out", "attn", "v", "d_attn", "d_v"}, "rrrww"
     EXPLAIN(NATTEN_OP_AV_BACKWARD, NATTEN_ARG_D_OUT, NATTEN_ARG_ATTN, NATTEN_ARG_V, NATTEN_ARG_D_ATTN,
             NATTEN_ARG_D_V)},
    {"fna_forward", call_fna_forward, 6, {"q", "k", "v", "rpb", "out", "lse"}, "rrrrww"
     EXPLAIN(NATTEN_OP_FNA_FORWARD, NATTEN_ARG_Q, NATTEN_ARG_K, NATTEN_ARG_V, NATTEN_ARG_RPB,
             NATTEN_ARG_OUT, NATTEN_ARG_LSE)},
    {"fna_backward", call_fna_backward, 11,
     {"q", "k", "v", "rpb", "out", "lse", "d_out", "d_q", "d_k", "d_v", "d_rpb"}, "rrrrrrrwwww"
     EXPLAIN(NATTEN_OP_FNA_BACKWARD, NATTEN_ARG_Q, NATTEN_ARG_K, NATTEN_ARG_V, NATTEN_ARG_RPB,
             NATTEN_ARG_OUT, NATTEN_ARG_LSE, NATTEN_ARG_D_OUT, NATTEN_ARG_D_Q, NATTEN_ARG_D_K,
             NATTEN_ARG_D_V, NATTEN_ARG_D_RPB)},
};

#ifdef PYNATTEN_HAVE_EXPLAIN
/* explain(opname, params, capsules...) -> (status, backend or None, text): which backend
 * would run the call and why the others refuse; nothing runs, nothing is written. */
static PyObject *Context_explain(ContextObject *self, PyObject *args)
{
    const op_desc *d = NULL;
    const char *name;
    const DLTensor *t[NATTEN_ARG_COUNT] = {0};
    natten_params p;
    const char *backend = NULL;
    char buf[8192];
    natten_status st;
    if (PyTuple_GET_SIZE(args) < 2 || (name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, 0))) == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "explain(opname, params, tensors...)");
        return NULL;
    }
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].name, name) == 0) d = &ops[i];
    if (d == NULL) return PyErr_Format(PyExc_ValueError, "explain: no op named '%s'", name);
    if (PyTuple_GET_SIZE(args) != d->n + 2)
        return PyErr_Format(PyExc_TypeError, "explain(%s) takes params and %d tensors", name, d->n);
    if (params_of(PyTuple_GET_ITEM(args, 1), &p) < 0) return NULL;
    for (int i = 0; i < d->n; i++) {
        DLTensor *x;
        if (tensor_of(PyTuple_GET_ITEM(args, i + 2), d->roles[i], 0, &x) < 0) return NULL;
        t[d->args[i]] = x;
    }
    buf[0] = '\0';
    st = natten_explain(self->ctx, d->op, &p, t, &backend, buf, sizeof buf);
    return Py_BuildValue("(izs)", (int)st, backend, buf);
}
#endif

static PyObject *run_op(ContextObject *self, PyObject *args, const op_desc *d)
{
    natten_params p;
    DLTensor *t[MAX_ROLES];
    natten_status st;
    if (PyTuple_GET_SIZE(args) != d->n + 1) {
        PyErr_Format(PyExc_TypeError, "%s takes params and %d tensors (%zd given)", d->name, d->n,
                     PyTuple_GET_SIZE(args) - 1);
        return NULL;
    }
    if (params_of(PyTuple_GET_ITEM(args, 0), &p) < 0) return NULL;
    for (int i = 0; i < d->n; i++)
        if (tensor_of(PyTuple_GET_ITEM(args, i + 1), d->roles[i], d->outputs[i] == 'w', &t[i]) < 0)
            return NULL;
    /* The capsules stay referenced by args while the GIL is released. */
    Py_BEGIN_ALLOW_THREADS
    st = d->call(self->ctx, &p, t);
    Py_END_ALLOW_THREADS
    if (st) return raise_status(st, d->name);
    Py_RETURN_NONE;
}

#define OP_METHOD(idx, fn)                                                 \
    static PyObject *Context_##fn(ContextObject *self, PyObject *args)    \
    {                                                                      \
        return run_op(self, args, &ops[idx]);                              \
    }
OP_METHOD(0, qk_forward)
OP_METHOD(1, qk_backward)
OP_METHOD(2, av_forward)
OP_METHOD(3, av_backward)
OP_METHOD(4, fna_forward)
OP_METHOD(5, fna_backward)

static PyMethodDef Context_methods[] = {
    {"set_backend", (PyCFunction)Context_set_backend, METH_O,
     "set_backend(name): force a backend; None or 'auto' restores automatic selection."},
    {"set_stream", (PyCFunction)Context_set_stream, METH_O,
     "set_stream(ptr): cudaStream_t as an int for GPU backends; None or 0 = default stream."},
    {"set_num_threads", (PyCFunction)Context_set_num_threads, METH_O,
     "set_num_threads(n): CPU threads for multithreaded backends; 0 = default."},
    {"last_backend", (PyCFunction)Context_last_backend, METH_NOARGS,
     "Name of the backend that ran this context's last successful op, or None."},
#ifdef PYNATTEN_HAVE_EXPLAIN
    {"explain", (PyCFunction)Context_explain, METH_VARARGS,
     "explain(opname, params, tensors...) -> (status, backend or None, text)"},
#endif
#ifdef PYNATTEN_HAVE_TUNING
    {"set_tuning", (PyCFunction)Context_set_tuning, METH_O,
     "set_tuning(mode): 0 = heuristic, 1 = measure (natten_tuning)."},
    {"wisdom_export", (PyCFunction)Context_wisdom_export, METH_O, "wisdom_export(path)"},
    {"wisdom_import", (PyCFunction)Context_wisdom_import, METH_O, "wisdom_import(path)"},
    {"tuning_report", (PyCFunction)Context_tuning_report, METH_NOARGS,
     "(signature, [(backend, config, status, time_ms, reason)]) of the last measured problem."},
#endif
    {"qk_forward", (PyCFunction)Context_qk_forward, METH_VARARGS,
     "qk_forward(params, q, k, rpb, attn)"},
    {"qk_backward", (PyCFunction)Context_qk_backward, METH_VARARGS,
     "qk_backward(params, d_attn, q, k, d_q, d_k, d_rpb)"},
    {"av_forward", (PyCFunction)Context_av_forward, METH_VARARGS, "av_forward(params, attn, v, out)"},
    {"av_backward", (PyCFunction)Context_av_backward, METH_VARARGS,
     "av_backward(params, d_out, attn, v, d_attn, d_v)"},
    {"fna_forward", (PyCFunction)Context_fna_forward, METH_VARARGS,
     "fna_forward(params, q, k, v, rpb, out, lse)"},
    {"fna_backward", (PyCFunction)Context_fna_backward, METH_VARARGS,
     "fna_backward(params, q, k, v, rpb, out, lse, d_out, d_q, d_k, d_v, d_rpb)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ContextType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "natten._C.Context",
    .tp_basicsize = sizeof(ContextObject),
    .tp_dealloc = (destructor)Context_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A libnatten context (natten_context): forced backend, stream, threads.\n"
              "Op methods take params and DLPack capsules (None for an absent optional tensor).",
    .tp_methods = Context_methods,
    .tp_new = Context_new,
};

/* ------------------------------------------------------------------------- */
/* Module functions */

static PyObject *mod_version_string(PyObject *m, PyObject *unused)
{
    (void)m; (void)unused;
    return PyUnicode_FromString(natten_version_string());
}

static PyObject *mod_backends(PyObject *m, PyObject *unused)
{
    int n = natten_backend_count();
    PyObject *list = PyList_New(0);
    (void)m; (void)unused;
    if (list == NULL) return NULL;
    for (int i = 0; i < n; i++) {
        natten_backend_info info;
        natten_status st = natten_backend_get_info(i, &info);
        const char *dev;
        PyObject *row;
        if (st) {
            Py_DECREF(list);
            return raise_status(st, "natten_backend_get_info");
        }
        dev = info.device_type == kDLCPU ? "cpu" : info.device_type == kDLCUDA ? "cuda"
            : info.device_type == kDLROCM ? "rocm" : "other";
        row = Py_BuildValue("(sssOz)", info.name, info.description ? info.description : "", dev,
                            info.available ? Py_True : Py_False, info.reason);
        if (row == NULL || PyList_Append(list, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(row);
    }
    return list;
}

static PyObject *mod_status_string(PyObject *m, PyObject *arg)
{
    long s = PyLong_AsLong(arg);
    (void)m;
    if (s == -1 && PyErr_Occurred()) return NULL;
    return PyUnicode_FromString(natten_status_string((natten_status)s));
}

static PyMethodDef module_methods[] = {
    {"version_string", mod_version_string, METH_NOARGS,
     "natten_version_string(): library version and compiled-in backends."},
    {"backends", mod_backends, METH_NOARGS,
     "[(name, description, device, available, reason), ...] in selection order."},
    {"status_string", mod_status_string, METH_O, "natten_status_string(status)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "natten._C", "libnatten bindings (see natten/__init__.py).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

static PyObject *new_exc(PyObject *m, const char *name, PyObject *bases, const char *doc)
{
    char full[96];
    PyObject *e;
    snprintf(full, sizeof full, "natten.%s", name);
    e = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
    if (e == NULL) return NULL;
    Py_INCREF(e);
    if (PyModule_AddObject(m, name, e) < 0) {
        Py_DECREF(e);
        Py_DECREF(e);
        return NULL;
    }
    return e;
}

PyMODINIT_FUNC PyInit__C(void)
{
    PyObject *m, *bases;
    if (PyType_Ready(&ContextType) < 0) return NULL;
    m = PyModule_Create(&module_def);
    if (m == NULL) return NULL;
    Py_INCREF(&ContextType);
    if (PyModule_AddObject(m, "Context", (PyObject *)&ContextType) < 0) goto fail;

    exc_base = new_exc(m, "NattenError", PyExc_RuntimeError,
                       "A libnatten call failed; .status is the natten_status code.");
    if (exc_base == NULL) goto fail;
    bases = PyTuple_Pack(2, exc_base, PyExc_ValueError);
    exc_invalid = bases ? new_exc(m, "InvalidArgumentError", bases,
                                  "NATTEN_ERROR_INVALID_ARGUMENT: the request is wrong.") : NULL;
    Py_XDECREF(bases);
    if (exc_invalid == NULL) goto fail;
    bases = PyTuple_Pack(2, exc_base, PyExc_NotImplementedError);
    exc_unsupported = bases ? new_exc(m, "UnsupportedError", bases,
                                      "NATTEN_ERROR_UNSUPPORTED: valid, but no (chosen) backend "
                                      "can run it.") : NULL;
    Py_XDECREF(bases);
    if (exc_unsupported == NULL) goto fail;
    exc_unavailable = new_exc(m, "BackendUnavailableError", exc_base,
                              "NATTEN_ERROR_BACKEND_UNAVAILABLE: unknown backend name, or not "
                              "usable on this machine.");
    if (exc_unavailable == NULL) goto fail;

    if (PyModule_AddIntConstant(m, "VERSION_MAJOR", NATTEN_VERSION_MAJOR) < 0 ||
        PyModule_AddIntConstant(m, "VERSION_MINOR", NATTEN_VERSION_MINOR) < 0 ||
        PyModule_AddIntConstant(m, "VERSION_PATCH", NATTEN_VERSION_PATCH) < 0)
        goto fail;
#ifdef PYNATTEN_HAVE_EXPLAIN
    if (PyModule_AddIntConstant(m, "HAVE_EXPLAIN", 1) < 0) goto fail;
#else
    if (PyModule_AddIntConstant(m, "HAVE_EXPLAIN", 0) < 0) goto fail;
#endif
#ifdef PYNATTEN_HAVE_TUNING
    if (PyModule_AddIntConstant(m, "HAVE_TUNING", 1) < 0) goto fail;
#else
    if (PyModule_AddIntConstant(m, "HAVE_TUNING", 0) < 0) goto fail;
#endif
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
