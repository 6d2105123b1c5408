//! A partition worker on its owner: the bus consumer that stores the partition's
//! evidence (fenced), the partition's correlator, and people's actions routed to it.

use super::*;

/// Most messages stored per pull (they commit in one group), and most bytes: what one pull
/// holds unacknowledged must be stored well within the ack wait, even behind a backlog.
pub(super) const PULL_BATCH: usize = 32;

pub(super) const PULL_MAX_BYTES: usize = 4 << 20;

pub(super) struct Worker {
    pub(super) fence: Fence,
    pub(super) stop: watch::Sender<bool>,
    pub(super) status: Arc<CorrelatorStatus>,
    pub(super) done: Vec<tokio::task::JoinHandle<()>>,
    pub(super) correlator_done: Option<oneshot::Receiver<()>>,
}

impl Worker {
    pub(super) async fn stop(mut self) {
        let _ = self.stop.send(true);
        for h in self.done.drain(..) {
            let _ = h.await;
        }
        if let Some(rx) = self.correlator_done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
    }
}

/// Start owning a partition: its correlator (restored from the store), the bus consumer
/// that stores its evidence, and the command subscription.
pub(super) async fn start_worker(
    cluster: &Arc<Cluster>,
    outcomes: &Arc<Outcomes>,
    fence: Fence,
    make_correlator: &CorrelatorFactory,
) -> anyhow::Result<Worker> {
    use async_nats::jetstream::consumer;
    let part = fence.part;
    let stream = cluster.js.get_stream(cluster.cfg.stream()).await?;
    let name = format!("p{part}");
    let pull: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: cluster.cfg.evidence_subject(part),
                ack_policy: consumer::AckPolicy::Explicit,
                // Messages a dead owner fetched but never acknowledged come back after
                // this: tied to the lease so failover is not held up by it (a slow store
                // that outlives it only causes a redelivery, which the store dedupes).
                ack_wait: (cluster.cfg.lease_ttl * 2)
                    .clamp(Duration::from_secs(2), Duration::from_secs(30)),
                max_ack_pending: 20_000,
                ..Default::default()
            },
        )
        .await?;
    let status = Arc::new(CorrelatorStatus::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (cmd_tx, cmd_rx) = mpsc::channel(crate::pipeline::correlator::COMMAND_QUEUE);
    let pstore: Arc<dyn tapio_store::Store> = Arc::new(PartitionStore {
        inner: cluster.store.clone(),
        fence: fence.clone(),
    });
    let correlator = make_correlator(pstore, cmd_rx, status.clone());
    let wake = correlator.wake.clone();
    let (done_tx, done_rx) = oneshot::channel();
    {
        let stop = stop_rx.clone();
        // The warm-up runs on the partition's own thread: the lease loop keeps renewing.
        std::thread::Builder::new()
            .name(format!("correlator-p{part}"))
            .spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(warm_up_then_run(correlator, part, stop));
                }
                let _ = done_tx.send(());
            })?;
    }
    if let Ok(mut l) = cluster.local.lock() {
        l.insert(part, cmd_tx.clone());
    }
    let consume = tokio::spawn(consume(
        cluster.clone(),
        outcomes.clone(),
        pull,
        fence.clone(),
        status.clone(),
        wake,
        stop_rx.clone(),
    ));
    let commands = tokio::spawn(serve_commands(cluster.clone(), part, cmd_tx, stop_rx));
    Ok(Worker {
        fence,
        stop: stop_tx,
        status,
        done: vec![consume, commands],
        correlator_done: Some(done_rx),
    })
}

pub(super) async fn warm_up_then_run(
    mut correlator: Correlator,
    part: i32,
    stop: watch::Receiver<bool>,
) {
    let t = Instant::now();
    loop {
        match correlator.warm_up().await {
            Ok(n) => {
                tracing::info!(
                    component = "cluster",
                    partition = part,
                    events = n,
                    ms = t.elapsed().as_millis() as u64,
                    "partition warm-up done"
                );
                break;
            }
            Err(e) => {
                tracing::error!(component = "cluster", partition = part, error = %e,
                    "partition warm-up failed; retrying");
                if *stop.borrow() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    correlator.run(stop).await;
}

/// Bus → store for one partition: pull, store (fenced, one group commit), then ack.
pub(super) async fn consume(
    cluster: Arc<Cluster>,
    outcomes: Arc<Outcomes>,
    pull: async_nats::jetstream::consumer::PullConsumer,
    fence: Fence,
    status: Arc<CorrelatorStatus>,
    wake: Arc<tokio::sync::Notify>,
    stop: watch::Receiver<bool>,
) {
    let part = fence.part;
    // Bytes in flight per pull, too: with large batches (Kubernetes objects) 32 messages
    // could take longer to store than the ack wait under a backlog, and were then
    // delivered twice. Never below the server's largest message, or one would never fit.
    let max_bytes = PULL_MAX_BYTES.max(cluster.nats.server_info().max_payload);
    while !*stop.borrow() {
        let batch = pull
            .batch()
            .max_messages(PULL_BATCH)
            .max_bytes(max_bytes)
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let mut msgs = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(component = "cluster", partition = part, error = %e, "bus pull failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut got = Vec::new();
        while let Some(m) = msgs.next().await {
            match m {
                Ok(m) => got.push(m),
                Err(e) => {
                    tracing::warn!(component = "cluster", partition = part, error = %e, "bus message error");
                    break;
                }
            }
        }
        if got.is_empty() || *stop.borrow() {
            continue;
        }
        let mut batches = Vec::with_capacity(got.len());
        let mut ids = Vec::with_capacity(got.len());
        let mut keep = Vec::with_capacity(got.len());
        for m in got {
            match serde_json::from_slice::<BusBatch>(&m.payload) {
                Ok(b) => {
                    ids.push((b.agent_id.clone(), b.seq.unwrap_or(0)));
                    batches.push(IngestBatch {
                        agent_id: b.agent_id,
                        node: b.node,
                        seq: b.seq,
                        first_event_id: b.first_event_id,
                        events: b.events,
                        received_at: b.received_at,
                    });
                    keep.push(m);
                }
                Err(e) => {
                    tracing::error!(component = "cluster", partition = part, error = %e, "undecodable bus message dropped");
                    outcomes.metrics.cluster.bus_poison.inc();
                    let _ = m.ack().await;
                }
            }
        }
        // Sent in order, answered together: the store's writer commits them as one group.
        let results = futures_util::future::join_all(
            batches
                .into_iter()
                .map(|b| cluster.store.ingest_part(part, Some(fence.clone()), b)),
        )
        .await;
        let mut fenced = false;
        for ((m, r), (agent_id, seq)) in keep.into_iter().zip(results).zip(ids) {
            match r {
                Ok(out) => {
                    // Counted as accepted by the replica that published it.
                    outcomes.record(&out, &agent_id, seq, false);
                    if let Some((pos, _)) = out.stored.last() {
                        status.head.fetch_max(*pos, Ordering::Relaxed);
                    }
                    let _ = m.ack().await;
                }
                Err(StoreError::Fenced { .. }) => fenced = true,
                Err(e) => {
                    tracing::error!(component = "cluster", partition = part, error = %e, "storing bus evidence failed; it is redelivered");
                    let _ = m
                        .ack_with(async_nats::jetstream::AckKind::Nak(Some(
                            Duration::from_secs(1),
                        )))
                        .await;
                }
            }
        }
        wake.notify_one();
        if fenced {
            tracing::warn!(
                component = "cluster",
                partition = part,
                "fenced: another replica owns this partition now"
            );
            return;
        }
    }
}

/// Answer people's actions routed to this partition by other replicas.
pub(super) async fn serve_commands(
    cluster: Arc<Cluster>,
    part: i32,
    tx: mpsc::Sender<Command>,
    mut stop: watch::Receiver<bool>,
) {
    let mut sub = match cluster.nats.subscribe(cluster.cfg.cmd_subject(part)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(component = "cluster", partition = part, error = %e, "cannot subscribe to commands");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            m = sub.next() => m,
            _ = stop.changed() => None,
        };
        let Some(msg) = msg else { break };
        let Some(reply_to) = msg.reply.clone() else {
            continue;
        };
        let answer: WireAnswer = match serde_json::from_slice::<WireCommand>(&msg.payload) {
            Err(e) => WireAnswer::Store(format!("undecodable command: {e}")),
            Ok(w) => {
                let kind = match w {
                    WireCommand::Act { id, action, by } => CommandKind::Act { id, action, by },
                    WireCommand::Declare(d) => CommandKind::Declare(d),
                };
                let (rtx, rrx) = oneshot::channel();
                if tx.send(Command { kind, reply: rtx }).await.is_err() {
                    WireAnswer::Store(format!("partition {part} is changing owner; retry"))
                } else {
                    match rrx.await {
                        Ok(r) => r.into(),
                        Err(_) => {
                            WireAnswer::Store(format!("partition {part} is changing owner; retry"))
                        }
                    }
                }
            }
        };
        if let Ok(body) = serde_json::to_vec(&answer) {
            let _ = cluster.nats.publish(reply_to, body.into()).await;
        }
    }
    let _ = sub.unsubscribe().await;
}
