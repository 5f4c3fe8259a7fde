"""Two children from one Popen line (fork/clone stacks)."""
import subprocess


def spawn():
    for _ in range(2):
        subprocess.Popen(["true"]).wait()


spawn()
