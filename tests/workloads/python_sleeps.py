"""Many short sleeps from one line, each one voluntary switch off the CPU:
the off-CPU stack of `nap` must count every one. Usage: python_sleeps.py N"""
import sys
import time


def nap():
    time.sleep(0.0005)


def main(n):
    for _ in range(n):
        nap()


main(int(sys.argv[1]))
