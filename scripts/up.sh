#!/usr/bin/env bash
# `make up`: the emulator with the whole stack (rules, functions, policies from the CDK template), in the
# foreground, to explore by hand. Reuses `make demo`'s build; Ctrl-C or SIGTERM stops it cleanly.
#
# Environment:
#   CARGO_TARGET_DIR   where cargo builds (default: target)
#   IOT_EMULATOR_STATE_DIR  the emulator's state directory (default: .iot-emulator); every `iot-emulator`
#                      subcommand reads the same variable, so with it exported they need no --state-dir; kept
#                      between runs
#   DEMO_TEMPLATE      use this synthesized template instead of synthesizing one
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"
source "$ROOT/scripts/stack.sh"
STATE="${IOT_EMULATOR_STATE_DIR:-.iot-emulator}"

echo "== building (emulator, functions, agent)"
build_binaries
echo "== synthesizing the CDK template"
synthesize_template "$TARGET_DIR/up"
EMU="${BIN#"$ROOT"/}/iot-emulator"
[[ "$STATE" == .iot-emulator ]] || EMU="$EMU --state-dir $STATE"
cat <<MSG
== starting the emulator with $TEMPLATE (state: $STATE)
   From another terminal, in $ROOT:
     $EMU provision ratchet --template $TEMPLATE
     $EMU shadow get ratchet --name connectivity
     $EMU logs tail /iot/device-disconnects --follow
   Stop with Ctrl-C (sessions end, queued events are kept for the next start).

MSG
exec "$BIN/iot-emulator" --state-dir "$STATE" up --template "$TEMPLATE"
