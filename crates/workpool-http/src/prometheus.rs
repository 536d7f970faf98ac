//! `/metrics`: the pool's figures in Prometheus' text format, rendered by
//! `metrics-exporter-prometheus`, never by hand.
//!
//! The pool records nothing per task for the `metrics` facade: each scrape
//! calls `Pool::export_metrics`, which sets every counter and gauge from a
//! fresh `Stats`, and then renders.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::fmt;
use workpool::Pool;

/// The content type of Prometheus' text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where a router's figures are recorded and rendered from.
pub(crate) enum Exporter {
    /// A recorder of the router's own, never installed globally: the
    /// export runs with it as the thread's local recorder. A process may
    /// then hold several routers (several pools, or tests side by side)
    /// without their figures mixing, and without claiming the one global
    /// recorder an application may want for itself.
    Own {
        recorder: PrometheusRecorder,
        handle: PrometheusHandle,
    },
    /// A recorder the application installed globally: the pool's figures
    /// go there, beside the application's, and `/metrics` renders them all.
    Global(PrometheusHandle),
}

impl Exporter {
    pub(crate) fn own() -> Exporter {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Exporter::Own { recorder, handle }
    }

    /// Pushes the pool's figures, then renders the text.
    pub(crate) fn render(&self, pool: &Pool) -> String {
        match self {
            Exporter::Own { recorder, handle } => {
                metrics::with_local_recorder(recorder, || pool.export_metrics());
                handle.render()
            }
            Exporter::Global(handle) => {
                pool.export_metrics();
                handle.render()
            }
        }
    }
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exporter::Own { .. } => f.pad("Exporter::Own"),
            Exporter::Global(_) => f.pad("Exporter::Global"),
        }
    }
}
