"""Calls the test's C++ library (`libtemplates.so`, built by the test into
the directory given) with ctypes from one Python function: its native
frames are a function template's. A fixed amount of work, no clock."""

import ctypes
import sys

library = ctypes.CDLL(f"{sys.argv[1]}/libtemplates.so")
library.tracer_test_templates.argtypes = [ctypes.c_ulong]
library.tracer_test_templates.restype = ctypes.c_ulong


def template_loop(rounds):
    total = 0
    for _ in range(rounds):
        total += library.tracer_test_templates(1_000_000)
    return total


if __name__ == "__main__":
    print(template_loop(int(sys.argv[2])))
