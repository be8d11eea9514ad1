"""Provisioning through the control plane, as a fleet script would: for each of N things, CreateThing,
CreateKeysAndCertificate(setAsActive), AttachPolicy and AttachThingPrincipal with boto3, from W workers (one
client each). Workers are processes by default: boto3 costs about 0.6 ms of CPU per call, and threads would
serialize that on Python's GIL, measuring the client rather than the emulator (--threads to compare).

Usage: .tools/venv/bin/python tools/controlplane-provision-bench.py <endpoint URL> <things> [workers, default 8]
       [--threads] [--pid <emulator pid>] [--prefix NAME]
Creates the policy `bench-policy` (idempotent). Prints the wall time, things per second, the per-thing latency
p50/p99 (four calls each) and, with --pid, the emulator's RSS before and after (VmRSS).
"""

import argparse
import concurrent.futures
import json
import threading
import time

import boto3
from botocore.config import Config

parser = argparse.ArgumentParser()
parser.add_argument("endpoint")
parser.add_argument("things", type=int)
parser.add_argument("workers", type=int, nargs="?", default=8)
parser.add_argument("--threads", action="store_true", help="threads instead of processes")
parser.add_argument("--pid", type=int)
parser.add_argument("--prefix", default="bench")
args = parser.parse_args()

POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "iot:Connect",
    "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]})


def client():
    return boto3.client(
        "iot", endpoint_url=args.endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=2),
    )


def rss_kib():
    if not args.pid:
        return None
    with open(f"/proc/{args.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


local = threading.local()


def provision(index):
    iot = getattr(local, "iot", None)
    if iot is None:
        iot = local.iot = client()
    name = f"{args.prefix}-{index:06d}"
    started = time.perf_counter()
    iot.create_thing(thingName=name)
    certificate = iot.create_keys_and_certificate(setAsActive=True)
    arn = certificate["certificateArn"]
    iot.attach_policy(policyName="bench-policy", target=arn)
    iot.attach_thing_principal(thingName=name, principal=arn)
    return (time.perf_counter() - started) * 1000


def main():
    setup = client()
    try:
        setup.create_policy(policyName="bench-policy", policyDocument=POLICY)
    except setup.exceptions.ResourceAlreadyExistsException:
        pass

    rss_before = rss_kib()
    started = time.perf_counter()
    executor = (concurrent.futures.ThreadPoolExecutor if args.threads
                else concurrent.futures.ProcessPoolExecutor)
    with executor(max_workers=args.workers) as pool:
        latencies = sorted(pool.map(provision, range(args.things), chunksize=1 if args.threads else 50))
    elapsed = time.perf_counter() - started
    rss_after = rss_kib()

    def percentile(p):
        return latencies[min(len(latencies) - 1, max(0, int(round(p / 100 * len(latencies))) - 1))]

    kind = "threads" if args.threads else "processes"
    print(f"{args.things} things with certificates through {args.endpoint}, {args.workers} {kind}: "
          f"{elapsed:.1f} s, {args.things / elapsed:.0f} things/s; per thing (4 calls) "
          f"p50 {percentile(50):.1f} ms p99 {percentile(99):.1f} ms")
    if rss_before is not None and rss_after is not None:
        print(f"emulator RSS {rss_before / 1024:.1f} MiB -> {rss_after / 1024:.1f} MiB "
              f"(+{(rss_after - rss_before) / 1024:.1f} MiB, {(rss_after - rss_before) * 1024 / args.things:.0f} B per thing)")


if __name__ == "__main__":
    main()
