/* A tiny C extension module for the native-frames tests: `spin.spin(n)`
 * burns CPU in `tracer_test_spin_outer` (exported) and in a static
 * function under it, which a stripped module leaves unnamed;
 * `spin.fork_child()` forks from C (`tracer_test_fork_child`);
 * `spin.spin_until_signal(fd)` spins in C (`tracer_test_spin_until_signal`)
 * until a signal's Python handler raises. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Forks; the child leaves at once and is reaped here. Returns its pid. */
__attribute__((noinline, visibility("default"))) long tracer_test_fork_child(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return pid;
}

static PyObject *fork_child(PyObject *self, PyObject *args)
{
    long pid = tracer_test_fork_child();
    if (pid < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(pid);
}

/* Writes a byte to `ready` (the sender may signal now), then spins in C,
 * checking for signals, until a Python handler raises. */
__attribute__((noinline, visibility("default"))) int tracer_test_spin_until_signal(int ready)
{
    if (write(ready, "x", 1) != 1)
        return -1;
    for (;;) {
        spin_hidden(100000);
        if (PyErr_CheckSignals() < 0)
            return -1;
    }
}

static PyObject *spin_until_signal(PyObject *self, PyObject *args)
{
    int ready;
    if (!PyArg_ParseTuple(args, "i", &ready))
        return NULL;
    tracer_test_spin_until_signal(ready);
    if (!PyErr_Occurred())
        PyErr_SetFromErrno(PyExc_OSError);
    return NULL;
}

static PyMethodDef methods[] = {
    {"spin", spin, METH_VARARGS, "Burns CPU in C."},
    {"fork_child", fork_child, METH_NOARGS, "Forks from C; returns the child's pid."},
    {"spin_until_signal", spin_until_signal, METH_VARARGS,
     "Spins in C until a signal handler raises."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "spin", NULL, -1, methods};

PyMODINIT_FUNC PyInit_spin(void) { return PyModule_Create(&module); }
