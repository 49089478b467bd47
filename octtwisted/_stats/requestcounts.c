/*
 * octtwisted._stats.requestcounts: the compiled hot path of per-request
 * statistics (see octtwisted/_stats/requests.py, which holds the same in
 * Python, _Counts and RequestTable.record, and says what each figure is).
 *
 * - Counts: the figures of one request name that every request changes,
 *   as C fields (a NameStats is a Counts).
 * - ResponseRecorder(names, record): called as
 *   record_response(name, method, seconds, status, size), it counts a
 *   response whose name is in `names` (a dict of Counts), whose method is
 *   its row's and whose status is below 400, exactly as
 *   RequestTable.record would; anything else it hands to `record`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>

/* Keep in step with octtwisted/_stats/requests.py. */
#define REQUEST_BITS 9
#define LOWEST_US 1LL
#define HIGHEST_US (3600LL * 1000000LL)
#define UNSTAGED (1LL << REQUEST_BITS)

typedef struct {
    PyObject_HEAD
    PyObject *method;   /* str */
    PyObject *recent;   /* dict: staged microseconds -> count */
    PyObject *statuses; /* dict: status code -> count */
    long long requests;
    long long failures;
    long long total_us;
    long long min_us;
    long long max_us;
    long long size;
    long long sized;
} Counts;

static int
Counts_traverse(Counts *self, visitproc visit, void *arg)
{
    Py_VISIT(self->method);
    Py_VISIT(self->recent);
    Py_VISIT(self->statuses);
    return 0;
}

static int
Counts_clear(Counts *self)
{
    Py_CLEAR(self->method);
    Py_CLEAR(self->recent);
    Py_CLEAR(self->statuses);
    return 0;
}

/* A subclass's instances (NameStats) come here from subtype_dealloc,
 * which releases their type itself (this type is static). */
static void
Counts_dealloc(Counts *self)
{
    PyObject_GC_UnTrack(self);
    Counts_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Counts_members[] = {
    {"method", T_OBJECT_EX, offsetof(Counts, method), 0, "the row's HTTP method"},
    {"recent", T_OBJECT_EX, offsetof(Counts, recent), 0, "staged values since the last settle"},
    {"statuses", T_OBJECT_EX, offsetof(Counts, statuses), 0, "status code -> count"},
    {"requests", T_LONGLONG, offsetof(Counts, requests), 0, "requests"},
    {"failures", T_LONGLONG, offsetof(Counts, failures), 0, "failed requests"},
    {"total_us", T_LONGLONG, offsetof(Counts, total_us), 0, "the sum of the times"},
    {"min_us", T_LONGLONG, offsetof(Counts, min_us), 0, "the shortest time"},
    {"max_us", T_LONGLONG, offsetof(Counts, max_us), 0, "the longest time"},
    {"size", T_LONGLONG, offsetof(Counts, size), 0, "the sum of the sized bodies"},
    {"sized", T_LONGLONG, offsetof(Counts, sized), 0, "responses whose size is known"},
    {NULL}
};

static PyTypeObject CountsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "octtwisted._stats.requestcounts.Counts",
    .tp_doc = "The figures of one request name that every request changes.",
    .tp_basicsize = sizeof(Counts),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)Counts_dealloc,
    .tp_traverse = (traverseproc)Counts_traverse,
    .tp_clear = (inquiry)Counts_clear,
    .tp_members = Counts_members,
};

/* recent or statuses: table[key] += 1 */
static int
add_one(PyObject *table, long long key)
{
    PyObject *k = PyLong_FromLongLong(key);
    if (k == NULL) {
        return -1;
    }
    PyObject *old = PyDict_GetItemWithError(table, k); /* borrowed */
    PyObject *count;
    if (old == NULL) {
        if (PyErr_Occurred()) {
            Py_DECREF(k);
            return -1;
        }
        count = PyLong_FromLong(1);
    }
    else {
        long long n = PyLong_AsLongLong(old);
        if (n == -1 && PyErr_Occurred()) {
            Py_DECREF(k);
            return -1;
        }
        count = PyLong_FromLongLong(n + 1);
    }
    if (count == NULL) {
        Py_DECREF(k);
        return -1;
    }
    int failed = PyDict_SetItem(table, k, count);
    Py_DECREF(k);
    Py_DECREF(count);
    return failed;
}

typedef struct {
    PyObject_HEAD
    PyObject *names;  /* dict: name -> Counts */
    PyObject *record; /* the table's own record, for everything else */
    vectorcallfunc vectorcall;
} ResponseRecorder;

static PyObject *
hand_over(ResponseRecorder *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return PyObject_Vectorcall(self->record, args, nargsf, kwnames);
}

static PyObject *
ResponseRecorder_call(ResponseRecorder *self, PyObject *const *args, size_t nargsf,
                      PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 5 || kwnames != NULL) {
        return hand_over(self, args, nargsf, kwnames);
    }
    PyObject *name = args[0], *method = args[1];
    if (!PyFloat_CheckExact(args[2]) || !PyLong_CheckExact(args[3])
            || !PyLong_CheckExact(args[4])) {
        return hand_over(self, args, nargsf, kwnames);
    }
    double seconds = PyFloat_AS_DOUBLE(args[2]);
    long status = PyLong_AsLong(args[3]);
    long long size = PyLong_AsLongLong(args[4]);
    if ((status == -1 || size == -1) && PyErr_Occurred()) {
        PyErr_Clear();
        return hand_over(self, args, nargsf, kwnames);
    }
    if (status >= 400 || !isfinite(seconds)) {
        return hand_over(self, args, nargsf, kwnames);
    }
    PyObject *found = PyDict_GetItemWithError(self->names, name); /* borrowed */
    if (found == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        return hand_over(self, args, nargsf, kwnames);
    }
    if (!PyObject_TypeCheck(found, &CountsType)) {
        return hand_over(self, args, nargsf, kwnames);
    }
    Counts *entry = (Counts *)found;
    if (entry->method != method) {
        if (entry->method == NULL || !PyUnicode_CheckExact(method)) {
            return hand_over(self, args, nargsf, kwnames);
        }
        int same = PyUnicode_Compare(entry->method, method);
        if (same == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (same != 0) {
            return hand_over(self, args, nargsf, kwnames);
        }
    }
    if (entry->recent == NULL || !PyDict_CheckExact(entry->recent)
            || entry->statuses == NULL || !PyDict_CheckExact(entry->statuses)) {
        return hand_over(self, args, nargsf, kwnames);
    }
    /* int(seconds * 1e6 + 0.5), clamped: RequestTable.record's */
    double scaled = seconds * 1e6 + 0.5;
    long long us;
    if (scaled < (double)LOWEST_US) {
        us = LOWEST_US;
    }
    else if (scaled >= (double)(HIGHEST_US + 1)) {
        us = HIGHEST_US;
    }
    else {
        us = (long long)scaled;
    }
    long long key = us;
    if (us >= UNSTAGED) {
        int shift = (64 - __builtin_clzll((unsigned long long)us)) - REQUEST_BITS;
        key = (us >> shift) << shift;
    }
    if (add_one(entry->recent, key) < 0) {
        return NULL;
    }
    entry->requests += 1;
    entry->total_us += us;
    if (us < entry->min_us) {
        entry->min_us = us;
    }
    if (us > entry->max_us) {
        entry->max_us = us;
    }
    if (status != 0 && add_one(entry->statuses, status) < 0) {
        return NULL;
    }
    if (size >= 0) {
        entry->size += size;
        entry->sized += 1;
    }
    Py_INCREF(name);
    return name;
}

static PyObject *
ResponseRecorder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *names, *record;
    static char *keywords[] = {"names", "record", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O:ResponseRecorder", keywords,
                                     &PyDict_Type, &names, &record)) {
        return NULL;
    }
    if (!PyCallable_Check(record)) {
        PyErr_SetString(PyExc_TypeError, "record must be callable");
        return NULL;
    }
    ResponseRecorder *self = (ResponseRecorder *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    Py_INCREF(names);
    self->names = names;
    Py_INCREF(record);
    self->record = record;
    self->vectorcall = (vectorcallfunc)ResponseRecorder_call;
    return (PyObject *)self;
}

static int
ResponseRecorder_traverse(ResponseRecorder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->names);
    Py_VISIT(self->record);
    return 0;
}

static int
ResponseRecorder_clear(ResponseRecorder *self)
{
    Py_CLEAR(self->names);
    Py_CLEAR(self->record);
    return 0;
}

static void
ResponseRecorder_dealloc(ResponseRecorder *self)
{
    PyObject_GC_UnTrack(self);
    ResponseRecorder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ResponseRecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "octtwisted._stats.requestcounts.ResponseRecorder",
    .tp_doc = "record_response(name, method, seconds, status, size): a response counted.",
    .tp_basicsize = sizeof(ResponseRecorder),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = ResponseRecorder_new,
    .tp_dealloc = (destructor)ResponseRecorder_dealloc,
    .tp_traverse = (traverseproc)ResponseRecorder_traverse,
    .tp_clear = (inquiry)ResponseRecorder_clear,
    .tp_vectorcall_offset = offsetof(ResponseRecorder, vectorcall),
    .tp_call = PyVectorcall_Call,
};

static struct PyModuleDef countsc_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "octtwisted._stats.requestcounts",
    .m_doc = "The compiled hot path of per-request statistics (see octtwisted._stats.requests).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit_requestcounts(void)
{
    if (PyType_Ready(&CountsType) < 0 || PyType_Ready(&ResponseRecorderType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&countsc_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&CountsType);
    if (PyModule_AddObject(module, "Counts", (PyObject *)&CountsType) < 0) {
        Py_DECREF(&CountsType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&ResponseRecorderType);
    if (PyModule_AddObject(module, "ResponseRecorder", (PyObject *)&ResponseRecorderType) < 0) {
        Py_DECREF(&ResponseRecorderType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
