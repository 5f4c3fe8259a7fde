"""Calls the test's C extension (`spin`, built by the test into the
directory given) from one Python function: its native frames are the
extension's. A fixed amount of work, no clock."""

import sys

sys.path.insert(0, sys.argv[1])
import spin  # noqa: E402


def spin_loop(rounds):
    total = 0
    for _ in range(rounds):
        total += spin.spin(2_000_000)
    return total


if __name__ == "__main__":
    print(spin_loop(int(sys.argv[2])))
