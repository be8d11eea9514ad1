#!/usr/bin/env python3
"""The web console's numbers (docs/benchmarks.md, "Web console"): page load, publish -> visible in the MQTT test
client (p50/p99 over 100 messages), and the page under 1,000 messages/s on a subscription to `#` (what it keeps, its
JS heap, how responsive it stays, and the CPU the page's subscription adds to the emulator).

Usage (after `make setup` and a build): .tools/venv/bin/python tools/bench-console.py [--rate 1000] [--seconds 10]

It starts `target/debug/iot-emulator up --free-ports` with a fresh state directory and Debian's chromium through
chromedriver, as tools/test_console.py does. Messages are published with the data plane's HTTP Publish over
persistent connections (several threads, paced to the rate).
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "iot-emulator"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Publisher:
    def __init__(self, data_plane: str):
        parsed = urllib.parse.urlparse(data_plane)
        self.host, self.port = parsed.hostname, parsed.port
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=10)

    def publish(self, topic: str, payload: bytes):
        self.connection.request("POST", "/topics/" + urllib.parse.quote(topic, safe="") + "?qos=0", body=payload)
        response = self.connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"publish {topic}: HTTP {response.status}")


def flood(data_plane: str, rate: int, seconds: float, threads: int = 4) -> int:
    """Publishes `rate` messages/s for `seconds`; returns how many were published."""
    sent = [0] * threads
    per_thread = rate / threads

    def run(index: int):
        publisher = Publisher(data_plane)
        start = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * per_thread)
            while n < due:
                publisher.publish(f"flood/{index}/{n}", b'{"reading": 42, "unit": "C"}')
                n += 1
            time.sleep(0.001)
        sent[index] = n

    workers = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(sent)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--latency-messages", type=int, default=100)
    args = parser.parse_args()

    state = tempfile.mkdtemp(prefix="bench-console-")
    up = subprocess.Popen([str(EMULATOR), "--state-dir", state, "up", "--free-ports"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="warn"))
    try:
        endpoints_file = Path(state) / "endpoints.json"
        while not endpoints_file.exists():
            time.sleep(0.1)
        time.sleep(0.3)
        endpoints = json.loads(endpoints_file.read_text())
        console, data_plane = endpoints["console"], endpoints["dataPlane"]
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--enable-precise-memory-info"):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
        try:
            # 1. Page load: navigation until the subscription is shown (the stream is open).
            loads = []
            for _ in range(10):
                started = time.monotonic()
                driver.get(f"{console}/mqtt?subscribe=%23")
                WebDriverWait(driver, 10).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, '#subscriptions span[data-filter="#"]'))
                loads.append((time.monotonic() - started) * 1000)
            print(f"page load to subscribed (ms): median {statistics.median(loads):.0f}, max {max(loads):.0f}")

            # 2. Publish -> visible: the page notes when each message's element appears.
            driver.execute_script("""
                window.__arrivals = {};
                new MutationObserver((changes) => {
                  for (const change of changes) for (const node of change.addedNodes)
                    if (node.dataset && node.dataset.topic) window.__arrivals[node.dataset.topic] = Date.now();
                }).observe(document.getElementById('messages'), { childList: true });""")
            time.sleep(0.5)
            publisher = Publisher(data_plane)
            latencies = []
            for n in range(args.latency_messages):
                topic = f"latency/{n}"
                sent = time.time() * 1000
                publisher.publish(topic, b'{"n": 1}')
                arrived = WebDriverWait(driver, 5, poll_frequency=0.005).until(
                    lambda d: d.execute_script(f"return window.__arrivals['{topic}']"))
                latencies.append(arrived - sent)
            print(f"publish -> visible (ms) over {len(latencies)}: p50 {percentile(latencies, 0.5):.1f}, "
                  f"p99 {percentile(latencies, 0.99):.1f}, max {max(latencies):.1f}")

            # 3. The flood, without the page subscribed, then with it: the emulator's CPU, the page's state.
            driver.get(f"{console}/things")
            time.sleep(1)
            before = cpu_seconds(up.pid)
            sent_alone = flood(data_plane, args.rate, args.seconds)
            cpu_alone = cpu_seconds(up.pid) - before
            driver.get(f"{console}/mqtt?subscribe=%23")
            WebDriverWait(driver, 10).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, '#subscriptions span[data-filter="#"]'))
            time.sleep(0.5)
            responsiveness = []
            stop = threading.Event()

            def probe():
                while not stop.is_set():
                    started = time.monotonic()
                    driver.execute_script("return document.querySelectorAll('.message').length")
                    responsiveness.append((time.monotonic() - started) * 1000)
                    time.sleep(0.2)

            before = cpu_seconds(up.pid)
            prober = threading.Thread(target=probe)
            prober.start()
            sent_watched = flood(data_plane, args.rate, args.seconds)
            stop.set()
            prober.join()
            cpu_watched = cpu_seconds(up.pid) - before
            time.sleep(1)
            kept = driver.execute_script("return document.querySelectorAll('.message').length")
            heap = driver.execute_script("return performance.memory ? performance.memory.usedJSHeapSize : null")
            notice = driver.find_element(By.ID, "notice").text
            print(f"flood: {sent_alone / args.seconds:.0f} msg/s without the page, {sent_watched / args.seconds:.0f} "
                  f"msg/s with it subscribed to '#' ({args.seconds:.0f} s each)")
            print(f"  emulator CPU: {cpu_alone:.2f} s without the page, {cpu_watched:.2f} s with it "
                  f"(+{(cpu_watched - cpu_alone) / args.seconds * 100:.1f}% of a core)")
            print(f"  page keeps {kept} messages; JS heap {heap / 1e6:.1f} MB" if heap else f"  page keeps {kept}")
            print(f"  responsiveness (a script round trip during the flood, ms): p50 "
                  f"{percentile(responsiveness, 0.5):.0f}, p99 {percentile(responsiveness, 0.99):.0f}, "
                  f"max {max(responsiveness):.0f} over {len(responsiveness)} probes")
            print(f"  missed-message notice: {notice or 'none'}")
        finally:
            driver.quit()
    finally:
        up.terminate()
        up.wait(15)


if __name__ == "__main__":
    main()
