"""Two processes ping-pong one byte over pipes N times: 2 voluntary
context switches per round (sched_switch's hot path). Prints elapsed s."""
import os, sys, time
n = int(sys.argv[1])
a_r, a_w = os.pipe(); b_r, b_w = os.pipe()
pid = os.fork()
if pid == 0:
    for _ in range(n):
        os.read(a_r, 1); os.write(b_w, b"x")
    os._exit(0)
t = time.perf_counter()
for _ in range(n):
    os.write(a_w, b"x"); os.read(b_r, 1)
print(f"{time.perf_counter() - t:.3f}")
os.waitpid(pid, 0)
