"""scripts/redrive.sh (`make redrive`) against a moto server with the real AWS CLI: it enables a function's redrive
mapping only when its failed-events queue holds something, disables it again once the queue is empty, gives up
(and still disables it) when the queue stops shrinking, and refuses a function without a mapping.

moto keeps the state of event source mappings but does not run Lambda's SQS poller, so the test plays the poller:
once the mapping is enabled, it takes and deletes the messages, as a successful replay does.

Run: .tools/venv/bin/python -m unittest tools/test_redrive.py (make test-ops).
"""

import io
import os
import socket
import subprocess
import threading
import time
import unittest
import zipfile
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".tools" / "venv" / "bin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Redrive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        port = free_port()
        cls.endpoint = f"http://127.0.0.1:{port}"
        cls.moto = subprocess.Popen(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
        settings = dict(endpoint_url=cls.endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")
        cls.sqs = boto3.client("sqs", **settings)
        cls.lam = boto3.client("lambda", **settings)
        cls.role = boto3.client("iam", **settings).create_role(
            RoleName="redrive-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    @classmethod
    def tearDownClass(cls):
        cls.moto.kill()
        cls.moto.wait()

    def function_with_queue(self, name: str, messages: int) -> tuple[str, str]:
        """A function, its failed-events queue holding `messages` records, and its disabled mapping: (queue url, uuid)."""
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("bootstrap", "not run")
        self.lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=self.role,
                                 Handler="bootstrap", Code={"ZipFile": code.getvalue()})
        url = self.sqs.create_queue(QueueName=f"{name}-failed")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for n in range(messages):
            self.sqs.send_message(QueueUrl=url, MessageBody=f'{{"requestPayload": {n}}}')
        uuid = self.lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, Enabled=False,
                                                     BatchSize=10)["UUID"]
        return url, uuid

    def state(self, uuid: str) -> str:
        return self.lam.get_event_source_mapping(UUID=uuid)["State"]

    def redrive(self, functions: str, stall: str = "60") -> subprocess.CompletedProcess:
        # --endpoint-url, not AWS_ENDPOINT_URL: the AWS CLI v1 ignores the variable for SQS in us-east-1.
        env = dict(os.environ, FUNCTIONS=functions, AWS=f"{VENV_BIN / 'aws'} --endpoint-url {self.endpoint}",
                   AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   REDRIVE_POLL_SECONDS="0.3", REDRIVE_STALL_SECONDS=stall)
        return subprocess.run(["bash", str(ROOT / "scripts" / "redrive.sh")], env=env, capture_output=True,
                              text=True, timeout=120)

    def test_an_empty_queue_is_left_alone(self):
        _, uuid = self.function_with_queue("empty-fn", 0)
        run = self.redrive("empty-fn")
        self.assertEqual(run.returncode, 0, run)
        self.assertIn("empty-fn: 0 failed events", run.stdout)
        self.assertNotIn("enabled", run.stdout)
        self.assertEqual(self.state(uuid), "Disabled")

    def test_the_mapping_runs_until_the_queue_is_empty_then_is_disabled(self):
        url, uuid = self.function_with_queue("drained-fn", 3)
        seen_enabled = threading.Event()

        def poller():
            # Lambda's poller, replaying successfully: only while the mapping is enabled.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.state(uuid) != "Enabled":
                time.sleep(0.1)
            seen_enabled.set()
            while time.monotonic() < deadline:
                batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not batch:
                    return
                for message in batch:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

        thread = threading.Thread(target=poller)
        thread.start()
        run = self.redrive("drained-fn")
        thread.join()
        self.assertTrue(seen_enabled.is_set())
        self.assertEqual(run.returncode, 0, run)
        self.assertIn("drained-fn: 3 failed events", run.stdout)
        self.assertIn("every failed event replayed", run.stdout)
        self.assertEqual(self.state(uuid), "Disabled")

    def test_records_that_keep_failing_stay_and_the_mapping_is_disabled_anyway(self):
        _, uuid = self.function_with_queue("stuck-fn", 2)
        run = self.redrive("stuck-fn", stall="1")
        self.assertEqual(run.returncode, 1, run)
        self.assertIn("2 events still fail", run.stderr)
        self.assertIn("/aws/lambda/stuck-fn", run.stderr)
        self.assertEqual(self.state(uuid), "Disabled")

    def test_a_function_without_a_mapping_is_an_error(self):
        run = self.redrive("no-such-fn")
        self.assertEqual(run.returncode, 2, run)
        self.assertIn("has no SQS redrive mapping", run.stderr)


if __name__ == "__main__":
    unittest.main()
