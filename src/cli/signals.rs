//! SIGINT and SIGTERM for the long-running commands (`serve`, `ui`).

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Both stop signals, registered when this is made: a command makes it before it announces it
/// is up, so that a signal sent the moment the announcement appears is handled, never the
/// default action (an immediate death: nothing flushed, no clean-up). (tokio's `ctrl_c()`
/// would only register when first polled.)
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Registers the handlers; needs a tokio runtime context.
    pub fn install() -> anyhow::Result<StopSignals> {
        use anyhow::Context as _;
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("watching SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("watching SIGTERM")?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
