"""Python stacks behind kernel events: many /proc reads from one line,
then one sleep from another. Usage: python_read_stacks.py [READS]"""
import sys
import time


def read_status(n):
    for _ in range(n):
        with open("/proc/self/status") as f:
            f.read()


def sleepy():
    time.sleep(0.05)


def main():
    read_status(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
    sleepy()


main()
