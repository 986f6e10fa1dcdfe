/* Python calls as callgrind functions: a calling-context tree of Python frames under valgrind.

   CPython 3.11 runs Python functions inside one C function (_PyEval_EvalFrameDefault), so
   callgrind alone cannot say which Python function spent an instruction. Installed as the
   interpreter's frame evaluator (PEP 523), this module runs every Python frame through a
   trampoline of its own, a real named function (ct_00001, ct_00002 ... made by
   bench/calltree.py), one per node of the calling-context tree: (parent node, code object).
   A node is a path from the thread's first frame, so no trampoline is ever entered while
   it is already running, and callgrind's inclusive cost of each trampoline is exact: the
   instructions of that function at that place in the tree, its callees included.
   `dump(path)` writes the nodes (id, parent, file, line, qualified name) for the analysis.

   Installing an evaluator makes CPython stop inlining Python-to-Python calls, so an
   instrumented run costs more instructions than a plain one (the report says how many). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "calltree mirrors CPython 3.11's _PyInterpreterFrame"
#endif

/* The head of CPython 3.11's _PyInterpreterFrame (Include/internal/pycore_frame.h). */
typedef struct {
    PyObject *f_func;
    PyObject *f_globals;
    PyObject *f_builtins;
    PyObject *f_locals;
    PyCodeObject *f_code;
} FrameHead;

typedef PyObject *(*Trampoline)(PyThreadState *, struct _PyInterpreterFrame *, int,
                                _PyFrameEvalFunction);

extern const uintptr_t ct_table[]; /* the trampolines' addresses (bench/calltree.py) */
extern const int ct_count;

#define BUCKETS (1 << 20)

static int *node_parent;
static PyCodeObject **node_code;
static int nodes = 1; /* node 0 is every thread's root: no trampoline */
static int overflow; /* frames run without a node: the table was full */
static int *bucket; /* open addressing: node id + 1, 0 for empty */
static __thread int current; /* the running node of this thread */

static int
node_of(int parent, PyCodeObject *code)
{
    uintptr_t key = ((uintptr_t)code >> 4) * 2654435761u ^ (uintptr_t)parent * 40503u;
    size_t slot = key & (BUCKETS - 1);
    for (;;) {
        int found = bucket[slot];
        if (found == 0) {
            break;
        }
        if (node_parent[found - 1] == parent && node_code[found - 1] == code) {
            return found - 1;
        }
        slot = (slot + 1) & (BUCKETS - 1);
    }
    if (nodes >= ct_count) {
        return -1;
    }
    int node = nodes++;
    node_parent[node] = parent;
    Py_INCREF(code); /* its address names this node until the end */
    node_code[node] = code;
    bucket[slot] = node + 1;
    return node;
}

static PyObject *
evaluate(PyThreadState *tstate, struct _PyInterpreterFrame *frame, int throwflag)
{
    int parent = current;
    int node = node_of(parent, ((FrameHead *)frame)->f_code);
    if (node < 0) {
        overflow++;
        return _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    }
    current = node;
    PyObject *result =
        ((Trampoline)ct_table[node])(tstate, frame, throwflag, _PyEval_EvalFrameDefault);
    current = parent;
    return result;
}

static PyObject *
start(PyObject *self, PyObject *unused)
{
    if (node_parent == NULL) {
        node_parent = PyMem_RawCalloc(ct_count, sizeof(int));
        node_code = PyMem_RawCalloc(ct_count, sizeof(PyCodeObject *));
        bucket = PyMem_RawCalloc(BUCKETS, sizeof(int));
        if (node_parent == NULL || node_code == NULL || bucket == NULL) {
            return PyErr_NoMemory();
        }
    }
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), evaluate);
    Py_RETURN_NONE;
}

static PyObject *
stop(PyObject *self, PyObject *unused)
{
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), _PyEval_EvalFrameDefault);
    Py_RETURN_NONE;
}

static PyObject *
dump(PyObject *self, PyObject *args)
{
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) {
        return NULL;
    }
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    }
    fprintf(out, "# node\tparent\tfile\tline\tname (overflow %d)\n", overflow);
    for (int node = 1; node < nodes; node++) {
        PyCodeObject *code = node_code[node];
        const char *file = PyUnicode_AsUTF8(code->co_filename);
        const char *name = PyUnicode_AsUTF8(code->co_qualname);
        if (file == NULL || name == NULL) {
            fclose(out);
            return NULL;
        }
        fprintf(out, "%d\t%d\t%s\t%d\t%s\n", node, node_parent[node], file,
                code->co_firstlineno, name);
    }
    fclose(out);
    return PyLong_FromLong(nodes - 1);
}

static PyMethodDef methods[] = {
    {"start", start, METH_NOARGS, "Run every new Python frame through its node's trampoline."},
    {"stop", stop, METH_NOARGS, "Back to CPython's own frame evaluator."},
    {"dump", dump, METH_VARARGS, "Write the nodes to a file; return how many there are."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_calltree", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__calltree(void)
{
    return PyModule_Create(&module);
}
