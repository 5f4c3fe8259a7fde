"""Many short sleeps from one line: the off-CPU stack of `nap` must count
each voluntary switch its sleeps made, as the thread's own counter
(getrusage's ru_nvcsw) counts them around each call. A sleep whose
deadline passed before it began (the thread waited for a CPU between
reading the clock and the call) makes none. Usage: python_sleeps.py N OUT
(OUT: {"sleeps": N, "switches": the voluntary switches inside nap})"""
import json
import resource
import sys
import time


def nap():
    time.sleep(0.0005)


def main(n):
    switches = 0
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw
        nap()
        switches += resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw - before
    return switches


switches = main(int(sys.argv[1]))
with open(sys.argv[2], "w") as out:
    json.dump({"sleeps": int(sys.argv[1]), "switches": switches}, out)
