#!/usr/bin/env bash
# Run disconnect-recorder locally under `cargo lambda watch`, writing to a CloudWatch Logs API
# served by moto on 127.0.0.1, invoke it with each sample event, and print the stored records.
# Needs `make setup` and the build tools (`make lambdas` installs them).
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
export PATH="$root/.tools/venv/bin:$PATH"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
watch_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

# Built here with cargo's progress visible: `cargo lambda watch` would otherwise compile in silence into its log.
echo "== building disconnect-recorder"
cargo build -p disconnect-recorder

moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 & moto=$!
cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$watch_port" \
  --env-var "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=$endpoint" --env-var AWS_ACCESS_KEY_ID=test \
  --env-var AWS_SECRET_ACCESS_KEY=test >/tmp/disconnect-recorder-watch.log 2>&1 & watch=$!
trap 'kill $moto $watch 2>/dev/null || true' EXIT

for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
python3 - "$endpoint" <<'PY'
import sys, boto3
boto3.client("logs", endpoint_url=sys.argv[1]).create_log_group(logGroupName="/iot/device-disconnects")
PY
echo "== waiting for cargo lambda watch on 127.0.0.1:$watch_port (log: /tmp/disconnect-recorder-watch.log)"
for i in $(seq 300); do
  (echo >/dev/tcp/127.0.0.1/$watch_port) 2>/dev/null && break
  if (( i % 50 == 0 )); then echo "   still starting: $(tail -n 1 /tmp/disconnect-recorder-watch.log)"; fi
  sleep 0.2
done

for event in events/*.json; do
  echo "== $event"
  cargo lambda invoke disconnect-recorder -A 127.0.0.1 -P "$watch_port" --data-file "$event"
  echo
done

echo "== records in /iot/device-disconnects"
python3 - "$endpoint" <<'PY'
import sys, json, boto3
logs = boto3.client("logs", endpoint_url=sys.argv[1])
for s in logs.describe_log_streams(logGroupName="/iot/device-disconnects")["logStreams"]:
    for e in logs.get_log_events(logGroupName="/iot/device-disconnects", logStreamName=s["logStreamName"], startFromHead=True)["events"]:
        r = json.loads(e["message"])
        print(f'{s["logStreamName"]:10} {r["source"]:9} {r["reason"]:24} malformed={r.get("malformed", False)} recordId={r["recordId"]}')
PY
