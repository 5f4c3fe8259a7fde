"""Says "ready", then waits until interrupted (Ctrl-C: KeyboardInterrupt,
and CPython ends by re-raising SIGINT on itself)."""
import time

print("ready", flush=True)
time.sleep(3600)
