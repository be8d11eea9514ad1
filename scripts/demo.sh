#!/usr/bin/env bash
# `make demo`: the whole system on 127.0.0.1 with no AWS account (architecture section 4).
#
#   build -> synthesize the CDK template -> start iot-emulator (broker, shadows, rules, the real functions)
#   -> provision "ratchet" -> run the real device-agent -> desired.MOTOR ON, then OFF, over HTTP
#   -> reported follows -> kill -9 the agent -> disconnect records + connectivity shadow.
#
# Exits 0 only if every step was observed. Environment:
#   CARGO_TARGET_DIR   where cargo builds (default: target)
#   DEMO_TEMPLATE      use this synthesized template instead of synthesizing one (skips npm)
#   DEMO_DIR           work directory (default: $CARGO_TARGET_DIR/demo); wiped at start
#   DEMO_TIMEOUT       seconds to wait for each step (default: 30)
#   KEEP=1             leave the emulator running at the end (in the foreground, Ctrl-C stops it) to explore
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"
source "$ROOT/scripts/stack.sh"
DEMO_DIR="${DEMO_DIR:-$TARGET_DIR/demo}"
STATE="$DEMO_DIR/state"
TIMEOUT="${DEMO_TIMEOUT:-30}"
THING=ratchet

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
say() { printf '  %s\n' "$*"; }
fail() { printf '\n\033[31mDEMO FAILED: %s\033[0m\n' "$*" >&2; exit 1; }
command -v jq >/dev/null || fail "jq is needed (apt-get install jq)"

EMULATOR_PID=""
AGENT_PID=""
cleanup() {
  local status=$?
  if [[ -n "$AGENT_PID" ]] && kill -0 "$AGENT_PID" 2>/dev/null; then kill -9 "$AGENT_PID" 2>/dev/null || true; fi
  if [[ -n "$EMULATOR_PID" ]] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
    kill -TERM "$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
  fi
  if [[ $status -ne 0 ]]; then
    echo "logs: $DEMO_DIR/emulator.log, $DEMO_DIR/agent.log, $STATE/lambda/*.log" >&2
  fi
}
trap cleanup EXIT

emu() { "$BIN/iot-emulator" --state-dir "$STATE" "$@"; }

# wait_for <description> <command...>: retries the command (quietly) until it succeeds.
wait_for() {
  local what="$1"; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || fail "timed out after ${TIMEOUT}s waiting for: $what"
    sleep 0.5
  done
}

shadow_json() { emu shadow get "$THING" "$@" 2>/dev/null; }
reported_motor_is() { [[ "$(shadow_json | jq -r '.state.reported.MOTOR // empty')" == "$1" ]]; }
connectivity_is() { [[ "$(shadow_json --name connectivity | jq -r '.state.reported.connected | tostring')" == "$1" ]]; }
records() { emu logs tail /iot/device-disconnects --stream "$THING" 2>/dev/null | cut -d' ' -f3-; }
has_record() { records | jq -s -e --arg s "$1" --arg r "$2" 'any(.[]; .source == $s and .reason == $r)' >/dev/null; }

# ---------------------------------------------------------------------------------------------
bold "1. Build (emulator, functions, agent)"
build_binaries
say "binaries in $BIN"

rm -rf "$DEMO_DIR" && mkdir -p "$DEMO_DIR"
bold "2. Synthesize the CDK template (placeholder Lambda assets: the template does not depend on the code)"
synthesize_template "$DEMO_DIR" || fail "cdk synth failed (see $DEMO_DIR/synth.log)"
if [[ -n "${DEMO_TEMPLATE:-}" ]]; then say "using DEMO_TEMPLATE=$TEMPLATE"; fi
[[ -f "$TEMPLATE" ]] || fail "no template at $TEMPLATE"
say "$(jq '[.Resources[] | select(.Type == "AWS::IoT::TopicRule")] | length' "$TEMPLATE") rules, $(jq '[.Resources[] | select(.Type == "AWS::Lambda::Function")] | length' "$TEMPLATE") functions in $TEMPLATE"

bold "3. Provision $THING (create-keys-and-certificate + attach-policy + attach-thing-principal)"
emu provision "$THING" --template "$TEMPLATE" | jq -r '"  certificateId \(.certificateId)\n  policies \(.policies | join(", "))"'

bold "4. Start the emulator"
RUST_LOG="${RUST_LOG:-info}" "$BIN/iot-emulator" --state-dir "$STATE" up --template "$TEMPLATE" \
  --free-ports >"$DEMO_DIR/emulator.out" 2>"$DEMO_DIR/emulator.log" &
EMULATOR_PID=$!
wait_for "the emulator's endpoints.json" test -s "$STATE/endpoints.json"
sed 's/^/  /' "$DEMO_DIR/emulator.out"
MQTT_PORT="$(jq -r '.mqtt' "$STATE/endpoints.json" | sed 's/.*://')"

bold "5. Run the real device-agent"
DEVICE_DIR="$STATE/devices/$THING"
cat >"$DEMO_DIR/agent.toml" <<EOF
endpoint = "localhost"
port = $MQTT_PORT
thing_name = "$THING"
[tls]
cert = "$DEVICE_DIR/certificate.pem.crt"
key = "$DEVICE_DIR/private.pem.key"
root_ca = "$DEVICE_DIR/root-CA.pem"
[telemetry]
temperature_interval_secs = 1.0
vibration_interval_secs = 1.0
[sensors]
temperature = "simulated"
[outbox]
path = "$DEMO_DIR/outbox"
EOF
DEVICE_AGENT_LOG=info "$BIN/device-agent" --config "$DEMO_DIR/agent.toml" run >"$DEMO_DIR/agent.log" 2>&1 &
AGENT_PID=$!
wait_for "the connectivity shadow to say connected" connectivity_is true
say "agent pid $AGENT_PID connected; shadow \"connectivity\": $(shadow_json --name connectivity | jq -c '.state.reported | {connected, versionNumber}')"

bold "6. An app sets desired.MOTOR over HTTP; the agent acts, then reports"
for state in ON OFF; do
  emu shadow update "$THING" "{\"state\":{\"desired\":{\"MOTOR\":\"$state\"}}}" >/dev/null
  say "UpdateThingShadow desired.MOTOR=$state"
  wait_for "reported.MOTOR=$state" reported_motor_is "$state"
  say "reported.MOTOR=$state  (classic shadow version $(shadow_json | jq '.version'))"
done
wait_for "shadow-reconciler to clear the satisfied desired.MOTOR" \
  bash -c "'$BIN/iot-emulator' --state-dir '$STATE' shadow get $THING | jq -e '.state.desired.MOTOR == null'"
say "desired.MOTOR cleared by shadow-reconciler (desired hygiene): $(shadow_json | jq -c '.state')"

bold "7. kill -9 the agent (no DISCONNECT: the broker publishes its Last Will)"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=""
wait_for "the Last Will record" has_record will LAST_WILL
wait_for "the lifecycle record" has_record lifecycle CONNECTION_LOST
wait_for "the connectivity shadow to say disconnected" connectivity_is false

bold "8. What happened, as recorded"
say "Disconnect records in /iot/device-disconnects/$THING (read with FilterLogEvents):"
records | jq -r '"    - \(.source) record: reason \(.reason), expected \(.expected), recordId \(.recordId)"'
say "Connectivity shadow (written only by shadow-reconciler):"
shadow_json --name connectivity | jq -r '.state.reported | "    connected=\(.connected) reason=\(.disconnectReason) versionNumber=\(.versionNumber) clientId=\(.clientId)"'
say "Rule errors: $(emu logs tail /iot/rule-errors 2>/dev/null | wc -l), failed invocations: $(emu logs tail /emulator/lambda-failures 2>/dev/null | wc -l)"

bold "Demo complete: every step was observed."

if [[ "${KEEP:-}" == 1 ]]; then
  bold "KEEP=1: the emulator keeps running (Ctrl-C stops it). From another terminal:"
  say "target/debug/iot-emulator --state-dir $STATE shadow get $THING"
  say "target/debug/iot-emulator --state-dir $STATE logs tail /iot/device-disconnects --follow"
  say "endpoints: $STATE/endpoints.json"
  wait "$EMULATOR_PID" || true
  EMULATOR_PID=""
fi
