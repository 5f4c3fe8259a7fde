/* A C program that embeds libpython and runs Python from two threads it
 * creates itself: threads that `threading` never saw, attached to the
 * interpreter with PyGILState_Ensure.
 *
 *   embed_threads MODE CPU_SECONDS FACTS
 *
 * MODE hold:  each thread holds one thread state for its whole run;
 *      churn: each thread takes and drops a thread state around every call
 *             (PyGILState_Ensure / Release), as C callbacks into Python do.
 * Each thread burns CPU_SECONDS of its own CPU time in the Python function
 * `tally_rows`, then appends {"tid", "name", "cpu_ns"} to FACTS (a line).
 * Built by the test: gcc embed_threads.c $(python3.11-config --cflags
 * --ldflags --embed).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *mode;
static long long budget_ns;
static FILE *facts;
static pthread_mutex_t facts_lock = PTHREAD_MUTEX_INITIALIZER;

static long long thread_cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *worker(void *arg) {
    char name[16];
    snprintf(name, sizeof name, "cworker-%ld", (long)arg);
    pthread_setname_np(pthread_self(), name);
    long long begin = thread_cpu_ns();
    int churn = !strcmp(mode, "churn");
    PyGILState_STATE held = 0;
    if (!churn)
        held = PyGILState_Ensure();
    while (thread_cpu_ns() - begin < budget_ns) {
        PyGILState_STATE g = churn ? PyGILState_Ensure() : held;
        if (PyRun_SimpleString("tally_rows(20000)") != 0)
            _exit(3);
        if (churn)
            PyGILState_Release(g);
    }
    if (!churn)
        PyGILState_Release(held);
    long long spent = thread_cpu_ns() - begin;
    pthread_mutex_lock(&facts_lock);
    fprintf(facts, "{\"tid\": %d, \"name\": \"%s\", \"cpu_ns\": %lld}\n", gettid(), name, spent);
    fflush(facts);
    pthread_mutex_unlock(&facts_lock);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[1], "hold") && strcmp(argv[1], "churn"))) {
        fprintf(stderr, "usage: %s hold|churn CPU_SECONDS FACTS\n", argv[0]);
        return 2;
    }
    mode = argv[1];
    budget_ns = (long long)(atof(argv[2]) * 1e9);
    facts = fopen(argv[3], "w");
    if (!facts) {
        perror(argv[3]);
        return 2;
    }
    Py_Initialize();
    PyRun_SimpleString(
        "def tally_rows(n):\n"
        "    total = 0\n"
        "    for i in range(n):\n"
        "        total += (i * 7) % 13\n"
        "    return total\n");
    /* The main thread lets go of the GIL while its workers run. */
    PyThreadState *main_state = PyEval_SaveThread();
    pthread_t threads[2];
    for (long i = 0; i < 2; i++)
        pthread_create(&threads[i], NULL, worker, (void *)i);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    PyEval_RestoreThread(main_state);
    Py_Finalize();
    fclose(facts);
    return 0;
}
