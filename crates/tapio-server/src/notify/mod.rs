//! Notifications live in the `tapio-notify` crate (routing, outbox, dispatcher, templates,
//! one module per channel). This is the glue that runs its dispatcher inside the server:
//! outcomes go to the server's metrics, escalation notes to the incident's timeline through
//! the correlator (its single writer). The re-exports keep `crate::notify::…` paths.

use std::sync::Arc;

use tapio_store::Store;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use ulid::Ulid;

pub use tapio_notify::{Templates, config, outbox};

use crate::metrics::Metrics;
use crate::pipeline::correlator::{Command, CommandKind};

/// The server's side of the dispatcher: what it counts and where escalations are written.
struct ServerHost {
    metrics: Arc<Metrics>,
    commands: mpsc::Sender<Command>,
}

#[async_trait::async_trait]
impl tapio_notify::dispatch::Host for ServerHost {
    fn count(&self, receiver: &str, result: &str) {
        self.metrics.notification(receiver, result);
    }

    async fn note(&self, incident: Ulid, note: String) {
        let (tx, rx) = oneshot::channel();
        let cmd = Command {
            kind: CommandKind::Act {
                id: incident,
                action: tapio_core::lifecycle::Action::Note { text: note },
                by: "tapio".into(),
            },
            reply: tx,
        };
        if self.commands.send(cmd).await.is_ok() {
            let _ = rx.await;
        }
    }
}

pub mod dispatch {
    //! The dispatcher as the server starts it (see [`tapio_notify::dispatch`]).

    use super::*;

    pub struct Dispatcher {
        pub store: Arc<dyn Store>,
        pub cfg: Arc<config::NotifyConfig>,
        pub templates: Arc<Templates>,
        pub wake: Arc<Notify>,
        pub metrics: Arc<Metrics>,
        pub silences: crate::silences::Shared,
        /// To record escalations on the incident's timeline (through its single writer).
        pub commands: mpsc::Sender<Command>,
    }

    impl Dispatcher {
        pub async fn run(self, shutdown: watch::Receiver<bool>) {
            let host = ServerHost {
                metrics: self.metrics,
                commands: self.commands,
            };
            tapio_notify::dispatch::Dispatcher {
                store: self.store,
                cfg: self.cfg,
                templates: self.templates,
                wake: self.wake,
                silences: self.silences,
                host: Arc::new(host),
            }
            .run(shutdown)
            .await;
        }
    }
}
