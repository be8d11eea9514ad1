"""Control-plane round trip with boto3: DescribeThing calls against an IoT control-plane endpoint, one at a time.

Usage: .tools/venv/bin/python tools/controlplane-bench.py <endpoint URL> [calls, default 1000]
Creates the thing `bench-thing` (idempotent), warms up with 50 calls, then times each call of the run with
time.perf_counter around the boto3 call (signing, HTTP on a kept-alive connection, parsing) and prints
p50/p90/p99/max in milliseconds and calls per second. Works against the emulator or moto_server alike.
"""

import statistics
import sys
import time

import boto3
from botocore.config import Config

endpoint = sys.argv[1]
calls = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
iot = boto3.client(
    "iot", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id="bench", aws_secret_access_key="bench",
    config=Config(retries={"max_attempts": 1, "mode": "standard"}),
)
try:
    iot.create_thing(thingName="bench-thing", attributePayload={"attributes": {"purpose": "bench"}})
except iot.exceptions.ResourceAlreadyExistsException:
    pass
for _ in range(50):
    iot.describe_thing(thingName="bench-thing")

samples = []
started = time.perf_counter()
for _ in range(calls):
    before = time.perf_counter()
    iot.describe_thing(thingName="bench-thing")
    samples.append((time.perf_counter() - before) * 1000)
elapsed = time.perf_counter() - started

samples.sort()
def percentile(p):
    return samples[min(len(samples) - 1, int(round(p / 100 * len(samples))) - 1)]
print(f"{calls} DescribeThing calls against {endpoint}")
print(f"p50 {percentile(50):.2f} ms  p90 {percentile(90):.2f} ms  p99 {percentile(99):.2f} ms  "
      f"max {samples[-1]:.2f} ms  mean {statistics.fmean(samples):.2f} ms  {calls / elapsed:.0f} calls/s")
