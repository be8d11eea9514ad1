//! An MQTT client that records what the agent publishes, and checks on the order of what it saw.

use super::*;

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: Value,
    pub at: Instant,
}

/// A client (CN `observer`) that records everything on its filters, with a persistent session so
/// nothing published while it reconnects after a broker restart is lost.
pub struct Observer {
    pub messages: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    pub async fn start(
        pki: &Pki,
        identity: &Identity,
        port: u16,
        client_id: &str,
        filters: &[&str],
    ) -> Self {
        let mut options = MqttOptions::new(client_id, ("127.0.0.1", port));
        options.set_keep_alive(30);
        options.set_clean_session(false);
        options.set_transport(tls_transport(pki, identity));
        let (client, mut eventloop) = AsyncClient::builder(options).capacity(1000).build();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&messages);
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for filter in &filters {
                            client
                                .subscribe(filter.clone(), QoS::AtLeastOnce)
                                .await
                                .unwrap();
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let payload = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        sink.lock().unwrap().push(Received {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload,
                            at: Instant::now(),
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("observer subscribed")
            .unwrap();
        Self { messages, task }
    }

    pub fn on_topic(&self, topic: &str) -> Vec<Received> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.topic == topic)
            .cloned()
            .collect()
    }

    /// Wait until `predicate` holds over the messages on `topic`.
    pub async fn wait_for(
        &self,
        topic: &str,
        timeout: Duration,
        predicate: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.on_topic(topic);
            if predicate(&messages) {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {topic}; have {} messages",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sequence numbers of the telemetry on `topic`, in arrival order.
pub fn seqs(messages: &[Received]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| m.payload.get("seq").and_then(Value::as_u64))
        .collect()
}

/// Assert that, ignoring duplicates (at-least-once), seq numbers arrived as exactly 1..=last in order.
pub fn assert_complete_and_ordered(seqs: &[u64], last: u64) {
    let mut seen = std::collections::BTreeSet::new();
    let mut firsts = Vec::new();
    for &seq in seqs {
        if seen.insert(seq) {
            firsts.push(seq);
        }
    }
    let expected: Vec<u64> = (1..=last).collect();
    assert_eq!(
        firsts.len(),
        expected.len(),
        "missing messages: have {} distinct, expected {last}",
        firsts.len()
    );
    assert_eq!(firsts, expected, "first arrivals are not in seq order");
}
