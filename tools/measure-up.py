#!/usr/bin/env python3
"""Time from `make up` to "iot-emulator is up", under a pseudo-terminal as a user sees it, and the longest time the
terminal showed nothing (issue 18: no step may stay silent for more than 10 s).

    python3 tools/measure-up.py <checkout> <state-dir>

For a fresh clone: `git clone <repo> /tmp/fresh && ln -s $PWD/.tools /tmp/fresh/.tools` (or `make setup` there),
then `python3 tools/measure-up.py /tmp/fresh /tmp/fresh-state`. Stops the emulator once it is up.
"""
import os, pty, sys, time, signal, select
cwd, state = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.chdir(cwd); os.environ["IOT_EMULATOR_STATE_DIR"] = state
    os.execvp("make", ["make", "up"])
start = time.time(); last = start; longest = 0.0; buf = b""; ready = None
while True:
    r, _, _ = select.select([fd], [], [], 60)
    if not r: break
    try: chunk = os.read(fd, 4096)
    except OSError: break
    if not chunk: break
    now = time.time()
    if now - last > longest: longest = now - last; where = (buf[-150:], chunk[:150])
    last = now
    buf += chunk
    if b"iot-emulator is up" in buf:
        ready = now - start; break
os.kill(pid, signal.SIGTERM); time.sleep(1)
os.system(f"pkill -TERM -f 'state-dir {state} up'")
try: os.killpg(pid, signal.SIGTERM)
except Exception: pass
print(f"longest silence ended with: {where[1][:100]!r}"); print(f"ready after {ready:.1f} s; longest time without any output on the terminal {longest:.1f} s")
