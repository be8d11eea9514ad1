//! A fake AWS IoT classic-shadow service for one thing, speaking MQTT through the broker.

use super::*;

/// A fake AWS IoT classic-shadow service for one thing (reference 3.x), speaking MQTT through the broker.
/// It also checks, on every report, that the simulated motor is already in the reported state.
pub struct FakeShadow {
    pub state: Arc<Mutex<ShadowState>>,
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
pub struct ShadowState {
    pub desired: BTreeMap<String, Value>,
    pub reported: BTreeMap<String, Value>,
    pub version: u64,
    pub exists: bool,
    /// Reject the next N device updates with this code.
    pub reject_next: Vec<u16>,
    pub rejected_sent: u32,
    pub gets: u32,
    /// Every reported MOTOR value, in order.
    pub reports: Vec<String>,
    /// Reports that ran ahead of the actuator (must stay empty).
    pub violations: Vec<String>,
}

fn delta(state: &ShadowState) -> serde_json::Map<String, Value> {
    state
        .desired
        .iter()
        .filter(|(k, v)| state.reported.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn merge(section: &mut BTreeMap<String, Value>, update: Option<&Value>) {
    if let Some(Value::Object(map)) = update {
        for (k, v) in map {
            if v.is_null() {
                section.remove(k);
            } else {
                section.insert(k.clone(), v.clone());
            }
        }
    }
}

impl FakeShadow {
    pub async fn start(
        pki: &Pki,
        identity: &Identity,
        port: u16,
        motor: impl Fn() -> String + Send + 'static,
    ) -> Self {
        let mut options = MqttOptions::new("fake-shadow-service", ("127.0.0.1", port));
        options.set_keep_alive(30);
        options.set_clean_session(true);
        options.set_transport(tls_transport(pki, identity));
        let (client, mut eventloop) = AsyncClient::builder(options).capacity(1000).build();
        let state = Arc::new(Mutex::new(ShadowState::default()));
        let shared = Arc::clone(&state);
        let publisher = client.clone();
        let prefix = format!("$aws/things/{THING}/shadow");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        publisher
                            .try_subscribe(format!("{prefix}/get"), QoS::AtLeastOnce)
                            .unwrap();
                        publisher
                            .try_subscribe(format!("{prefix}/update"), QoS::AtLeastOnce)
                            .unwrap();
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        let request: Value =
                            serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        let replies = {
                            let mut s = shared.lock().unwrap();
                            if topic.ends_with("/get") {
                                s.gets += 1;
                                get_reply(&s, &prefix, &request)
                            } else {
                                device_update(&mut s, &prefix, &request, &motor)
                            }
                        };
                        for (topic, body) in replies {
                            publisher
                                .try_publish(
                                    topic,
                                    body.to_string(),
                                    PublishOptions::new(QoS::AtLeastOnce),
                                )
                                .unwrap();
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("fake shadow subscribed")
            .unwrap();
        Self {
            state,
            client,
            task,
        }
    }

    /// What an app does: `{"state":{"desired":{"MOTOR":..}}}`. Publishes accepted + delta when `online`.
    pub fn set_desired(&self, motor: &str, online: bool) {
        let prefix = format!("$aws/things/{THING}/shadow");
        let replies = {
            let mut s = self.state.lock().unwrap();
            s.exists = true;
            s.desired.insert("MOTOR".into(), json!(motor));
            s.version += 1;
            let mut replies = vec![(
                format!("{prefix}/update/accepted"),
                json!({"state":{"desired":{"MOTOR":motor}},"version":s.version,"clientToken":"app-1","timestamp":1}),
            )];
            let d = delta(&s);
            if !d.is_empty() {
                replies.push((
                    format!("{prefix}/update/delta"),
                    json!({"state":d,"version":s.version,"timestamp":1}),
                ));
            }
            replies
        };
        if online {
            for (topic, body) in replies {
                self.client
                    .try_publish(
                        topic,
                        body.to_string(),
                        PublishOptions::new(QoS::AtLeastOnce),
                    )
                    .unwrap();
            }
        }
    }

    pub fn reported_motor(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .reported
            .get("MOTOR")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    pub async fn wait_reported(&self, motor: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.reported_motor().as_deref() != Some(motor) {
            assert!(
                Instant::now() < deadline,
                "reported.MOTOR never became {motor}: {:?}",
                self.state.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for FakeShadow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn get_reply(s: &ShadowState, prefix: &str, request: &Value) -> Vec<(String, Value)> {
    let token = request.get("clientToken").cloned().unwrap_or(Value::Null);
    if !s.exists {
        return vec![(
            format!("{prefix}/get/rejected"),
            json!({"code":404,"message":format!("No shadow exists with name: '{THING}'"),"clientToken":token}),
        )];
    }
    let mut state = serde_json::Map::new();
    if !s.desired.is_empty() {
        state.insert("desired".into(), json!(s.desired));
    }
    if !s.reported.is_empty() {
        state.insert("reported".into(), json!(s.reported));
    }
    let d = delta(s);
    if !d.is_empty() {
        state.insert("delta".into(), Value::Object(d));
    }
    vec![(
        format!("{prefix}/get/accepted"),
        json!({"state":state,"metadata":{},"version":s.version,"timestamp":1,"clientToken":token}),
    )]
}

fn device_update(
    s: &mut ShadowState,
    prefix: &str,
    request: &Value,
    motor: &impl Fn() -> String,
) -> Vec<(String, Value)> {
    let token = request.get("clientToken").cloned().unwrap_or(Value::Null);
    if let Some(code) = (!s.reject_next.is_empty()).then(|| s.reject_next.remove(0)) {
        s.rejected_sent += 1;
        return vec![(
            format!("{prefix}/update/rejected"),
            json!({"code":code,"message":"Version conflict","clientToken":token,"timestamp":1}),
        )];
    }
    if let Some(version) = request.get("version").and_then(Value::as_u64)
        && version != s.version
    {
        s.rejected_sent += 1;
        return vec![(
            format!("{prefix}/update/rejected"),
            json!({"code":409,"message":"Version conflict","clientToken":token,"timestamp":1}),
        )];
    }
    let state = request.get("state").cloned().unwrap_or(Value::Null);
    if let Some(reported_motor) = state.pointer("/reported/MOTOR").and_then(Value::as_str) {
        let actual = motor();
        if actual != reported_motor {
            s.violations.push(format!(
                "reported {reported_motor} while the motor was {actual}"
            ));
        }
        s.reports.push(reported_motor.to_string());
    }
    merge(&mut s.desired, state.get("desired"));
    merge(&mut s.reported, state.get("reported"));
    s.exists = true;
    s.version += 1;
    let mut replies = vec![(
        format!("{prefix}/update/accepted"),
        json!({"state":state,"version":s.version,"clientToken":token,"timestamp":1}),
    )];
    let d = delta(s);
    if !d.is_empty() && state.get("desired").is_some() {
        replies.push((
            format!("{prefix}/update/delta"),
            json!({"state":d,"version":s.version,"timestamp":1}),
        ));
    }
    replies
}
