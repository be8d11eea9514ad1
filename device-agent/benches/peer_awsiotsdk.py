"""The footprint peer: the same job as device-agent, with AWS's IoT Device SDK v2 for Python.

mTLS MQTT (MQTT 3.1.1 connection from awsiot.mqtt_connection_builder, the SDK's documented way),
a Last Will, the classic shadow subscriptions (get/update accepted/rejected, update/delta), a
shadow get on connect, and a temperature reading published at QoS 1 every 0.1 s (10 msg/s),
waiting for each PUBACK like the agent's outbox does. Run by benches/footprint.rs:

    python3 peer_awsiotsdk.py HOST PORT THING CA CERT KEY
"""
import json
import sys
import threading
import time

from awscrt import mqtt
from awsiot import mqtt_connection_builder

host, port, thing, ca, cert, key = sys.argv[1], int(sys.argv[2]), *sys.argv[3:7]
session = f"peer-{time.time_ns()}"
connected_at = int(time.time() * 1000)

connection = mqtt_connection_builder.mtls_from_path(
    endpoint=host,
    port=port,
    cert_filepath=cert,
    pri_key_filepath=key,
    ca_filepath=ca,
    client_id=thing,
    clean_session=False,
    keep_alive_secs=30,
    will=mqtt.Will(
        topic=f"device/{thing}/lwt",
        qos=mqtt.QoS.AT_LEAST_ONCE,
        payload=json.dumps({"thing": thing, "agentSession": session, "connectedAt": connected_at,
                            "agentVersion": "peer", "reason": "unexpected"}).encode(),
        retain=False,
    ),
)
connection.connect().result(timeout=30)

motor = {"MOTOR": "OFF"}


def on_delta(topic, payload, **kwargs):
    state = json.loads(payload).get("state", {})
    if state.get("MOTOR") in ("ON", "OFF"):
        motor["MOTOR"] = state["MOTOR"]
        connection.publish(f"$aws/things/{thing}/shadow/update",
                           json.dumps({"state": {"reported": motor}}), mqtt.QoS.AT_LEAST_ONCE)


def ignore(topic, payload, **kwargs):
    pass


prefix = f"$aws/things/{thing}/shadow"
for suffix, callback in [("get/accepted", ignore), ("get/rejected", ignore), ("update/accepted", ignore),
                         ("update/rejected", ignore), ("update/delta", on_delta)]:
    future, _ = connection.subscribe(f"{prefix}/{suffix}", mqtt.QoS.AT_LEAST_ONCE, callback)
    future.result()
connection.publish(f"{prefix}/get", "{}", mqtt.QoS.AT_LEAST_ONCE)

stop = threading.Event()
while not stop.is_set():
    started = time.monotonic()
    temp = 48.3  # the agent's simulated source is as cheap; sensor I/O is not what is compared
    reading = {"thing": thing, "ts": int(time.time() * 1000), "temp": temp, "unit": "C"}
    future, _ = connection.publish(f"data/{thing}/temperature", json.dumps(reading), mqtt.QoS.AT_LEAST_ONCE)
    future.result()
    time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
