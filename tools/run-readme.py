#!/usr/bin/env python3
"""Runs the README's "Play with it" section as written, so that its commands cannot rot (`make test-readme`).

The README marks the blocks it means to be run:

  ```sh play:up     the command of the first terminal (`make up`): started in the background, in its own
                    process group; the blocks run once its emulator has written endpoints.json, and Ctrl-C
                    (SIGINT) stops it at the end, as the README tells the reader to
  ```sh play        run in order, all in one bash (variables and background jobs carry over, as in one
                    terminal), with `set -euo pipefail`: a failing command fails the test

A command whose trailing comment starts with `refused` or `fails` must fail (exit non-zero); one whose comment
starts with `nothing` must print nothing. Everything else must succeed. The whole run has a deadline, so a
command that waits forever fails too.

What differs from a reader's terminal, and why:
  - the state directory is a fresh one (IOT_EMULATOR_STATE_DIR, which every `iot-emulator` subcommand and
    `make up` read), and the text `.iot-emulator` in the blocks is replaced by it, so a user's own
    `.iot-emulator/` is never read or touched;
  - `.tools/venv/bin` (the AWS CLI and tools of `make setup`) is appended to PATH, so a command of the
    reader's own still comes first;
  - background jobs still running at the end are killed.

Usage: python3 tools/run-readme.py [README.md]   (from anywhere; the blocks run in the repository's root)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# make up may build and synthesize first (minutes on a cold tree); the blocks themselves take well under that.
UP_DEADLINE_S = 1200
PLAY_DEADLINE_S = 300
STOP_DEADLINE_S = 30
DEFAULT_PORTS = (8883, 8088, 8089, 8090, 8091)
EXPECTATION = re.compile(r"^#\s*(refused|fails|nothing)\b")


def blocks(readme: str) -> list[tuple[str, str]]:
    """The (kind, text) of every ```sh play / ```sh play:up block, in order."""
    found, kind, lines = [], None, []
    for line in readme.splitlines():
        if kind is None:
            fence = re.fullmatch(r"```sh (play(?::up)?)\s*", line)
            if fence:
                kind, lines = fence.group(1), []
        elif line.strip() == "```":
            found.append((kind, "\n".join(lines)))
            kind = None
        else:
            lines.append(line)
    if kind is not None:
        raise SystemExit(f"README: a ```sh {kind} block is not closed")
    return found


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment) of a shell line: the comment starts at a `#` outside quotes after a blank."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index:]
    return line.rstrip(), ""


def logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined."""
    joined, pending = [], ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
        else:
            joined.append(pending + line)
            pending = ""
    if pending:
        joined.append(pending)
    return joined


def script_line(line: str) -> str:
    """The line as the test runs it: echoed, then run with its expectation checked."""
    command, comment = split_comment(line)
    if not command:
        return ""
    echo = f"printf '%s\\n' {shlex.quote('$ ' + command)}"
    expectation = EXPECTATION.match(comment)
    where = shlex.quote(command)
    if expectation is None:
        return f"{echo}\n{command}"
    if expectation.group(1) == "nothing":
        return (
            f"{echo}\n__out=$({command})\nprintf '%s' \"$__out\"\n"
            f"if [ -n \"$__out\" ]; then echo \"README: expected no output from: \"{where} >&2; exit 1; fi"
        )
    return f"{echo}\nif {command}; then echo \"README: expected to fail: \"{where} >&2; exit 1; fi"


def play_script(texts: list[str], state: Path) -> str:
    body = []
    for text in texts:
        for line in logical_lines(text.replace(".iot-emulator", str(state))):
            body.append(script_line(line))
    return "\n".join(
        [
            "set -euo pipefail",
            f"cd {shlex.quote(str(ROOT))}",
            # Background jobs (the agent) end with the run, whatever happens.
            "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
            *body,
        ]
    )


def tools_path() -> str:
    """PATH with the project's tools (.tools/venv/bin) last."""
    return f"{os.environ.get('PATH', '')}:{ROOT / '.tools' / 'venv' / 'bin'}"


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    readme = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "README.md"
    found = blocks(readme.read_text())
    ups = [text for kind, text in found if kind == "play:up"]
    plays = [text for kind, text in found if kind == "play"]
    if len(ups) != 1 or not plays:
        print(f"{readme}: expected one ```sh play:up block and some ```sh play blocks", file=sys.stderr)
        return 1
    missing = [tool for tool in ("aws", "mosquitto_pub") if shutil.which(tool, path=tools_path()) is None]
    if missing:
        message = f"{', '.join(missing)} not found (make setup installs them)"
        if os.environ.get("REQUIRE_TEST_TOOLS") == "1":
            print(message, file=sys.stderr)
            return 1
        print(f"SKIPPED the README's play blocks: {message}")
        return 0
    busy = [port for port in DEFAULT_PORTS if port_in_use(port)]
    if busy:
        print(
            f"ports {busy} are in use (an `iot-emulator up` of yours?): the README's commands use the default "
            "ports; stop it and run again",
            file=sys.stderr,
        )
        return 1
    work = ROOT / "target" / "readme-play"
    work.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="state-", dir=work))
    env = dict(os.environ, IOT_EMULATOR_STATE_DIR=str(state))
    env["PATH"] = tools_path()
    up_log_path = work / "up.log"
    print(f"== {readme}: {len(plays)} play blocks against a fresh state directory {state}")
    with open(up_log_path, "w") as up_log:
        up = subprocess.Popen(
            ["bash", "-c", ups[0]], cwd=ROOT, env=env, stdout=up_log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            return run(up, state, env, plays, up_log_path)
        finally:
            if up.poll() is None:
                os.killpg(up.pid, signal.SIGINT)
                try:
                    up.wait(STOP_DEADLINE_S)
                except subprocess.TimeoutExpired:
                    os.killpg(up.pid, signal.SIGKILL)
                    print(f"the play:up command did not stop within {STOP_DEADLINE_S} s of Ctrl-C", file=sys.stderr)
                    return 1


def run(up: subprocess.Popen, state: Path, env: dict, plays: list[str], up_log: Path) -> int:
    started = time.monotonic()
    endpoints = state / "endpoints.json"
    last_note = started
    while not endpoints.exists():
        if up.poll() is not None:
            print(f"the play:up command exited ({up.returncode}) before the emulator was up:", file=sys.stderr)
            print(up_log.read_text()[-4000:], file=sys.stderr)
            return 1
        if time.monotonic() - started > UP_DEADLINE_S:
            print(f"the emulator was not up within {UP_DEADLINE_S} s", file=sys.stderr)
            return 1
        if time.monotonic() - last_note > 8:
            print(f"   waiting for the emulator ({time.monotonic() - started:.0f} s; log: {up_log})", flush=True)
            last_note = time.monotonic()
        time.sleep(0.2)
    print(f"== emulator up after {time.monotonic() - started:.1f} s; running the blocks", flush=True)
    script = play_script(plays, state)
    (state.parent / "play.sh").write_text(script + "\n")
    began = time.monotonic()
    try:
        result = subprocess.run(["bash", "-c", script], env=env, timeout=PLAY_DEADLINE_S)
    except subprocess.TimeoutExpired:
        print(f"the play blocks did not finish within {PLAY_DEADLINE_S} s", file=sys.stderr)
        return 1
    if result.returncode != 0:
        print(f"a play block failed (exit {result.returncode}); the script: {state.parent / 'play.sh'}, "
              f"the emulator's log: {up_log}", file=sys.stderr)
        return 1
    print(f"== every play block ran as written ({time.monotonic() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
