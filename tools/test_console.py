"""The web console in a real browser: Debian's chromium through chromedriver (WebDriver), against
`iot-emulator up` with a fresh state directory (make test-console, part of make test).

What a user does with it: watch messages live in the MQTT test client (opened already subscribed from a URL),
publish from it, pause and clear; see things with their connectivity; edit a shadow's desired state, version-locked,
without touching reported; follow a shadow topic's link to the test client. Payloads are shown as text, never run.

Needs chromium and chromium-driver (make setup installs them as root) and selenium (tools/requirements.txt). Where
they are missing the tests skip, unless REQUIRE_TEST_TOOLS=1 (CI), where they fail.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "iot-emulator"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAIT_S = 15

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # reported by missing_tools()
    webdriver = None


def missing_tools() -> list[str]:
    missing = []
    if webdriver is None:
        missing.append("selenium (pip)")
    for tool in (CHROMEDRIVER, CHROMIUM):
        if not Path(tool).exists():
            missing.append(tool)
    if not EMULATOR.exists():
        missing.append(f"{EMULATOR} (cargo build -p iot-emulator)")
    return missing


MISSING = missing_tools()
if MISSING and os.environ.get("REQUIRE_TEST_TOOLS") == "1":
    raise SystemExit(f"the console tests need: {', '.join(MISSING)}")


def http(method: str, url: str, body: bytes = b"") -> dict:
    request = urllib.request.Request(url, data=body if method != "GET" else None, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else {}


@unittest.skipIf(MISSING, f"SKIPPED: the console tests need {', '.join(MISSING)}")
class Console(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = tempfile.mkdtemp(prefix="console-test-")
        cls.up = subprocess.Popen(
            [str(EMULATOR), "--state-dir", cls.state, "up", "--free-ports"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        endpoints_file = Path(cls.state) / "endpoints.json"
        deadline = time.monotonic() + 30
        while not endpoints_file.exists():
            if time.monotonic() > deadline or cls.up.poll() is not None:
                raise RuntimeError("iot-emulator up did not start")
            time.sleep(0.1)
        time.sleep(0.2)
        endpoints = json.loads(endpoints_file.read_text())
        cls.console = endpoints["console"]
        cls.data_plane = endpoints["dataPlane"]
        assert cls.console.startswith("http://127.0.0.1:"), endpoints
        cls.control_plane = endpoints["controlPlane"]
        cls.logs = endpoints["logs"]
        cls.mqtt_port = endpoints["mqtt"].rsplit(":", 1)[1]
        cls.root_ca = endpoints["rootCA"]
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--no-first-run", "--disable-extensions"):
            options.add_argument(argument)
        # The driver is Debian's: with an explicit path Selenium downloads nothing.
        cls.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.up.terminate()
        cls.up.wait(15)
        shutil.rmtree(cls.state, ignore_errors=True)

    # ---- helpers
    def publish(self, topic: str, payload: str, qos: int = 1):
        url = f"{self.data_plane}/topics/{urllib.request.quote(topic, safe='')}?qos={qos}"
        http("POST", url, payload.encode())

    def wait_for(self, css: str, text: str | None = None):
        def found(driver):
            for element in driver.find_elements(By.CSS_SELECTOR, css):
                if text is None or text in element.text:
                    return element
            return False
        # The live views re-render: an element found may be replaced before it is read.
        wait = WebDriverWait(self.driver, WAIT_S, ignored_exceptions=[StaleElementReferenceException])
        return wait.until(found, f"nothing matches {css} {text or ''}")

    def assert_page_is_clean(self):
        """No error in the browser's console, and nothing requested from another host."""
        errors = [entry for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        self.assertEqual([entry["message"] for entry in errors], [], "errors in the browser console")
        origins = self.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
        self.assertTrue(all(origin == self.console for origin in origins), origins)

    def screenshot(self, name: str):
        """With CONSOLE_SCREENSHOTS=<dir>, the page as a PNG (docs/console.md shows them)."""
        directory = os.environ.get("CONSOLE_SCREENSHOTS")
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self.driver.set_window_size(1280, 900)
            self.driver.save_screenshot(str(Path(directory) / f"{name}.png"))

    ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}

    def device(self, thing: str, policy: str = "console-test-all", document: dict | None = None) -> list[str]:
        """mosquitto's arguments for a device `thing` with `policy` attached (by default one that allows everything),
        provisioned once."""
        device_dir = Path(self.state) / "devices" / thing
        if not device_dir.exists():
            try:
                http("POST", f"{self.control_plane}/policies/{policy}",
                     json.dumps({"policyDocument": json.dumps(document or self.ALLOW_ALL)}).encode())
            except urllib.error.HTTPError as error:
                if error.code != 409:
                    raise
            run = subprocess.run([str(EMULATOR), "--state-dir", self.state, "provision", thing,
                                  "--policy", policy], capture_output=True, text=True, timeout=30)
            self.assertEqual(run.returncode, 0, run.stderr)
        return ["-h", "127.0.0.1", "-p", self.mqtt_port, "--cafile", self.root_ca,
                "--cert", str(device_dir / "certificate.pem.crt"), "--key", str(device_dir / "private.pem.key"),
                "-i", thing, "-q", "1"]

    def messages(self, topic: str):
        return self.driver.find_elements(By.CSS_SELECTOR, f'.message[data-topic="{topic}"]')

    # ---- MQTT test client
    def test_mqtt_client_watches_publishes_pauses_and_clears(self):
        self.driver.get(f"{self.console}/mqtt?subscribe=data%2F%23")
        self.wait_for('#subscriptions span[data-filter="data/#"]')
        time.sleep(0.3)  # the stream is open once the emulator answered; give it a moment
        self.publish("data/pi-01/temperature", '{"temp": 41.2}')
        message = self.wait_for('.message[data-topic="data/pi-01/temperature"]')
        self.assertIn('"temp": 41.2', message.find_element(By.CSS_SELECTOR, "pre").text)
        self.assertIn("service data-plane", message.text)
        self.assertIn("QoS 1", message.text)
        self.assertIn("service identity", self.driver.find_element(By.CSS_SELECTOR, "p.note").text)

        # A second subscription from the form, and a publish from the page itself.
        field = self.driver.find_element(By.ID, "filter")
        field.clear()
        field.send_keys("console/#")
        self.driver.find_element(By.ID, "subscribe").click()
        self.wait_for('#subscriptions span[data-filter="console/#"]')
        time.sleep(0.3)
        topic = self.driver.find_element(By.ID, "publish-topic")
        topic.clear()
        topic.send_keys("console/hello")
        payload = self.driver.find_element(By.ID, "publish-payload")
        payload.clear()
        hostile = '<img src=x onerror="document.title=\'owned\'">'
        payload.send_keys(hostile)
        self.driver.find_element(By.ID, "publish").click()
        sent = self.wait_for('.message[data-topic="console/hello"]')
        self.assertIn("service console", sent.text)
        # Shown as text, never as markup.
        self.assertEqual(sent.find_element(By.CSS_SELECTOR, "pre").text, hostile)
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "#messages img"), [])
        self.assertNotEqual(self.driver.title, "owned")

        # Paused: nothing new is shown; resumed: it is again. Clear empties the list.
        self.driver.find_element(By.ID, "pause").click()
        self.publish("data/pi-01/while-paused", "{}")
        time.sleep(1.0)
        self.assertEqual(self.messages("data/pi-01/while-paused"), [])
        self.driver.find_element(By.ID, "pause").click()
        self.publish("data/pi-01/after", "{}")
        self.wait_for('.message[data-topic="data/pi-01/after"]')
        self.driver.find_element(By.ID, "clear").click()
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, ".message"), [])
        self.assert_page_is_clean()

    @unittest.skipIf(shutil.which("mosquitto_pub") is None and os.environ.get("REQUIRE_TEST_TOOLS") != "1",
                     "SKIPPED: mosquitto-clients not installed")
    def test_a_device_publish_shows_within_2_s_and_the_page_reaches_a_subscribed_device(self):
        device = self.device("pi-03")
        self.driver.get(f"{self.console}/mqtt?subscribe=" + urllib.request.quote("data/+/vibration", safe=""))
        self.wait_for('#subscriptions span[data-filter="data/+/vibration"]')
        time.sleep(0.3)
        subprocess.run(["mosquitto_pub", *device, "-t", "data/pi-03/vibration", "-m", '{"vibration": 120}'],
                       check=True, timeout=10)
        shown = WebDriverWait(self.driver, 2).until(lambda driver: self.messages("data/pi-03/vibration"),
                                                    "a device's publish within 2 s")
        self.assertIn("client pi-03", shown[0].text)
        self.screenshot("mqtt-test-client")

        # From the page to a device subscribed over MQTT.
        listener = subprocess.Popen(["mosquitto_sub", *device[:-4], "-i", "pi-03-listener", "-q", "1",
                                     "-t", "cmd/pi-03", "-C", "1", "-W", "10"],
                                    stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        topic = self.driver.find_element(By.ID, "publish-topic")
        topic.clear()
        topic.send_keys("cmd/pi-03")
        payload = self.driver.find_element(By.ID, "publish-payload")
        payload.clear()
        payload.send_keys('{"MOTOR": "ON"}')
        self.driver.find_element(By.ID, "publish").click()
        received, _ = listener.communicate(timeout=15)
        self.assertEqual(received.strip(), '{"MOTOR": "ON"}')
        self.assert_page_is_clean()

    # ---- things and shadows
    def test_things_list_and_a_desired_only_version_locked_shadow_editor(self):
        provision = subprocess.run([str(EMULATOR), "--state-dir", self.state, "provision", "pi-02"],
                                   capture_output=True, text=True, timeout=30)
        self.assertEqual(provision.returncode, 0, provision.stderr)
        self.driver.get(f"{self.console}/things")
        row = self.wait_for('tr[data-thing="pi-02"]')
        self.assertEqual(row.find_element(By.CSS_SELECTOR, "td[data-connected]").get_attribute("data-connected"),
                         "false")
        self.assertEqual(len(row.find_elements(By.CSS_SELECTOR, "td")[2].find_elements(By.CSS_SELECTOR, "div")), 1,
                         "its one certificate")
        self.assert_page_is_clean()
        self.screenshot("things")

        shadow_url = f"{self.data_plane}/things/pi-02/shadow"
        http("POST", shadow_url, b'{"state":{"reported":{"MOTOR":"OFF"}}}')
        self.driver.get(f"{self.console}/things/pi-02")
        self.wait_for('section[data-shadow="classic"]', "version 1")
        editor = self.driver.find_element(By.CSS_SELECTOR, 'textarea[data-editor="classic"]')
        editor.clear()
        editor.send_keys('{"MOTOR": "ON"}')
        self.driver.find_element(By.CSS_SELECTOR, 'button[data-update="classic"]').click()
        self.wait_for('div[data-result="classic"]', "Updated: version 2")
        document = http("GET", shadow_url)
        self.assertEqual(document["state"]["desired"], {"MOTOR": "ON"})
        self.assertEqual(document["state"]["reported"], {"MOTOR": "OFF"}, "reported is left alone")
        # The page reloads live and highlights the delta.
        self.wait_for('section[data-shadow="classic"] pre[data-section="delta"] .delta-key', "MOTOR")
        # A change made over HTTP shows within 2 s, without a reload.
        http("POST", shadow_url, b'{"state":{"reported":{"LAMP":"LIT"}}}')
        WebDriverWait(self.driver, 2, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda driver: "LIT" in driver.find_element(
                By.CSS_SELECTOR, 'section[data-shadow="classic"] pre[data-section="reported"]').text,
            "an HTTP shadow change within 2 s")
        self.screenshot("thing-shadow")
        self.assert_page_is_clean()

        # While the editor is in use, a change from elsewhere makes the page's version stale: refused, not merged.
        editor = self.driver.find_element(By.CSS_SELECTOR, 'textarea[data-editor="classic"]')
        editor.click()
        http("POST", shadow_url, b'{"state":{"reported":{"MOTOR":"ON"}}}')
        time.sleep(0.5)
        self.assertIn("version 3", self.driver.find_element(By.CSS_SELECTOR, 'section[data-shadow="classic"]').text,
                      "not reloaded while the editor has the focus")
        editor.clear()
        editor.send_keys('{"MOTOR": "OFF"}')
        self.driver.find_element(By.CSS_SELECTOR, 'button[data-update="classic"]').click()
        self.wait_for('div[data-result="classic"]', "Version conflict")
        self.assertEqual(http("GET", shadow_url)["state"]["desired"], {"MOTOR": "ON"})

        # Every shadow topic links to the MQTT test client, subscribed.
        self.driver.find_element(By.LINK_TEXT, "$aws/things/pi-02/shadow/update/delta").click()
        self.wait_for('#subscriptions span[data-filter="$aws/things/pi-02/shadow/update/delta"]')


    # ---- why denied
    @unittest.skipIf(shutil.which("mosquitto_pub") is None and os.environ.get("REQUIRE_TEST_TOOLS") != "1",
                     "SKIPPED: mosquitto-clients not installed")
    def test_every_refusal_shows_with_the_statement_or_the_policies_that_decided_it(self):
        device = self.device("pi-07", "console-test-deny", {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/pi-07"},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/data/*"},
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/data/secret"}]})
        refused = lambda *args: subprocess.run(args, capture_output=True, timeout=15).returncode != 0
        self.assertTrue(refused("mosquitto_pub", *device, "-t", "data/secret", "-m", "{}"))
        self.assertTrue(refused("mosquitto_sub", *device, "-t", "data/#", "-C", "1", "-W", "3"))
        intruder = device[:-4] + ["-i", "intruder", "-q", "1"]
        self.assertTrue(refused("mosquitto_pub", *intruder, "-t", "data/x", "-m", "{}"))

        self.driver.get(f"{self.console}/denied")
        publish = self.wait_for('#denials tr[data-action="iot:Publish"][data-decision="ExplicitDeny"]')
        self.assertIn("disconnected (AUTH_ERROR)", publish.text)
        self.assertIn("topic/data/secret", publish.text)
        deciding = publish.find_element(By.CSS_SELECTOR, '.deciding[data-policy="console-test-deny"]')
        self.assertIn("statement 3", deciding.text)
        self.assertEqual(json.loads(deciding.find_element(By.CSS_SELECTOR, "pre").text)["Effect"], "Deny")
        subscribe = self.wait_for('#denials tr[data-action="iot:Subscribe"][data-decision="ImplicitDeny"]')
        self.assertIn("No statement of console-test-deny allows iot:Subscribe", subscribe.text)
        self.assertIn("topicfilter/data/#", subscribe.text)
        connect = self.wait_for('#denials tr[data-action="iot:Connect"]')
        self.assertIn("CONNECT refused", connect.text)
        self.assertIn("client/intruder", connect.text)
        self.screenshot("why-denied")
        self.assert_page_is_clean()

    # ---- logs
    def logs_call(self, operation: str, body: dict) -> dict:
        request = urllib.request.Request(self.logs, data=json.dumps(body).encode(), method="POST", headers={
            "content-type": "application/x-amz-json-1.1", "x-amz-target": f"Logs_20140328.{operation}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def put(self, group: str, stream: str, messages: list[str], at_ms: int):
        for operation, body in (("CreateLogGroup", {"logGroupName": group}),
                                ("CreateLogStream", {"logGroupName": group, "logStreamName": stream})):
            try:
                self.logs_call(operation, body)
            except urllib.error.HTTPError as error:
                if error.code != 400:
                    raise
        self.logs_call("PutLogEvents", {"logGroupName": group, "logStreamName": stream, "logEvents": [
            {"timestamp": at_ms + index, "message": message} for index, message in enumerate(messages)]})

    def test_logs_tail_live_and_the_disconnect_records_as_a_table_and_a_timeline(self):
        now = int(time.time() * 1000)
        record = lambda thing, source, reason, expected, at, **extra: json.dumps({
            "schema": "iot.disconnect.v1", "recordId": f"{thing}-{at}", "thing": thing, "clientId": thing,
            "source": source, "reason": reason, "clientInitiated": expected, "expected": expected,
            "eventTime": at, "receivedAt": at, **extra})
        self.put("/iot/device-disconnects", "pi-05", [
            record("pi-05", "will", "LAST_WILL", False, now - 60_000, connectedAt=now - 120_000),
            record("pi-05", "lifecycle", "CONNECTION_LOST", False, now - 59_990),
        ], now - 59_000)
        self.put("/iot/device-disconnects", "pi-06", [
            record("pi-06", "lifecycle", "CLIENT_INITIATED_DISCONNECT", True, now - 30_000)], now - 29_000)
        self.driver.get(f"{self.console}/logs?group=%2Fiot%2Fdevice-disconnects")
        self.wait_for('#disconnects tr[data-record="pi-05-' + str(now - 60_000) + '"]', "LAST_WILL")
        rows = self.driver.find_elements(By.CSS_SELECTOR, "#disconnects tbody tr")
        self.assertEqual(len(rows), 3)
        self.assertIn("pi-06 lifecycle CLIENT_INITIATED_DISCONNECT yes", rows[0].text)
        # The picture: one row per thing, a mark per disconnect coloured by its reason, the will's session as a bar.
        self.assertEqual(len(self.driver.find_elements(By.CSS_SELECTOR, '#timeline g[data-thing="pi-05"] circle')), 2)
        self.assertEqual(len(self.driver.find_elements(By.CSS_SELECTOR, '#timeline g[data-thing="pi-05"] rect')), 1)
        self.assertEqual(self.driver.find_element(By.CSS_SELECTOR, '#timeline g[data-thing="pi-06"] circle')
                         .get_attribute("data-reason"), "CLIENT_INITIATED_DISCONNECT")
        self.screenshot("logs-disconnects")
        # Live: a record written now shows within 2 s, in the table and the tail.
        self.put("/iot/device-disconnects", "pi-06", [
            record("pi-06", "will", "LAST_WILL", False, int(time.time() * 1000))], int(time.time() * 1000))
        WebDriverWait(self.driver, 2, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#disconnects tbody tr")) == 4,
            "a new record within 2 s")
        self.assert_page_is_clean()

        # Any other group: the live tail.
        self.put("/app/other", "s", ["first"], now)
        self.driver.get(f"{self.console}/logs")
        self.wait_for("#log-group option", "/app/other")
        self.driver.get(f"{self.console}/logs?group=%2Fapp%2Fother")
        self.wait_for("#log-events .message", "first")
        self.put("/app/other", "s", ["second <b>bold</b>"], int(time.time() * 1000))
        shown = self.wait_for("#log-events .message", "second")
        self.assertIn("<b>bold</b>", shown.text)
        self.assert_page_is_clean()


if __name__ == "__main__":
    unittest.main()
