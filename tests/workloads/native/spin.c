/* A tiny C extension module for the native-frames test: `spin.spin(n)`
 * burns CPU in `tracer_test_spin_outer` (exported) and in a static
 * function under it, which a stripped module leaves unnamed. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

__attribute__((noinline)) static unsigned long spin_hidden(unsigned long n)
{
    volatile unsigned long acc = 0;
    for (unsigned long i = 0; i < n; i++)
        acc += i * 2654435761u;
    return acc;
}

__attribute__((noinline, visibility("default"))) unsigned long
tracer_test_spin_outer(unsigned long n)
{
    unsigned long acc = 0;
    for (int round = 0; round < 4; round++)
        acc += spin_hidden(n);
    return acc;
}

static PyObject *spin(PyObject *self, PyObject *args)
{
    unsigned long n;
    if (!PyArg_ParseTuple(args, "k", &n))
        return NULL;
    return PyLong_FromUnsignedLong(tracer_test_spin_outer(n));
}

static PyMethodDef methods[] = {
    {"spin", spin, METH_VARARGS, "Burns CPU in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "spin", NULL, -1, methods};

PyMODINIT_FUNC PyInit_spin(void) { return PyModule_Create(&module); }
