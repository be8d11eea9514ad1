# Sourced by scripts/demo.sh and scripts/up.sh: build the binaries and synthesize the CDK template the emulator
# runs (`make demo`, `make up`). Expects ROOT and CARGO; sets TARGET_DIR, BIN and, from synthesize_template,
# TEMPLATE.

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/debug"

# One feature set for every binary, so `make demo`, `make up` and the README's target/debug/iot-emulator
# commands share one build. Cargo's progress stays visible: a first build takes a minute or more.
build_binaries() {
  "$CARGO" build -p iot-emulator -p disconnect-recorder -p shadow-reconciler -p device-agent &
  local build=$! ticks=0
  # Cargo prints a line when it starts a crate, not while one compiles (iot-emulator alone takes ~13 s in a
  # debug build): a line every 8 s keeps the terminal from going silent for longer (issue 18).
  while kill -0 "$build" 2>/dev/null; do
    sleep 1
    if (( ++ticks % 8 == 0 )) && kill -0 "$build" 2>/dev/null; then
      echo "   ... still building (${ticks} s)"
    fi
  done
  wait "$build"
}

# synthesize_template <dir>: the CDK app synthesized offline with placeholder Lambda assets (the template does
# not depend on the code) into <dir>/cdk.out; DEMO_TEMPLATE skips it.
synthesize_template() {
  local dir="$1"
  if [[ -n "${DEMO_TEMPLATE:-}" ]]; then
    TEMPLATE="$DEMO_TEMPLATE"
    return
  fi
  mkdir -p "$dir"/assets/{disconnect-recorder,shadow-reconciler}
  for f in disconnect-recorder shadow-reconciler; do echo placeholder > "$dir/assets/$f/bootstrap"; done
  [[ -d "$ROOT/infra/node_modules" ]] || (cd "$ROOT/infra" && npm ci --no-audit --no-fund --loglevel=error)
  (cd "$ROOT/infra" && npm run --silent synth -- -c lambdaAssetsDir="$dir/assets" -o "$dir/cdk.out") >"$dir/synth.log" 2>&1 \
    || { echo "cdk synth failed (see $dir/synth.log)" >&2; return 1; }
  TEMPLATE="$dir/cdk.out/IotPresence.template.json"
}
