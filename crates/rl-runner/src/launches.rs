//! Counts the compute kernels that CubeCL launches (the wgpu and cuda backends), for
//! `cargo xtask bench` and `sim-bench`.
//!
//! Every launch goes through cubecl-runtime's `ComputeClient::launch_inner`, which opens a
//! trace-level `tracing` span of that name (Burn's default features turn on cubecl-runtime's
//! `tracing` feature). [`launch_layer`] counts those spans as they open, before the launch
//! is submitted: no log file, and nothing to wait for but the device. Burn's fusion launches
//! from its own device thread, so the layer belongs in the global subscriber. It counts the
//! same launches as CubeCL's profiling logger (`[profiling.logger] level = "minimal"` in a
//! `cubecl.toml` writes one `Executing` line per launch, from a background thread; see
//! docs/performance.md).

use std::sync::atomic::{AtomicU64, Ordering};

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::Error;

/// The module and function of cubecl-runtime 0.10 that every kernel launch passes through.
const LAUNCH_TARGET: &str = "cubecl_runtime::client";
const LAUNCH_SPAN: &str = "launch_inner";

/// Launches seen by [`launch_layer`] since the process started, in all threads.
static LAUNCHES: AtomicU64 = AtomicU64::new(0);

fn is_launch(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.name() == LAUNCH_SPAN && meta.target() == LAUNCH_TARGET
}

/// The `tracing` layer that counts CubeCL kernel launches; add it to the process's global
/// subscriber (next to its formatting layer, each with its own filter) to make
/// [`LaunchCounter`] work. It enables only the launch span, so the other layers see nothing
/// new.
pub fn launch_layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    LaunchLayer.with_filter(filter_fn(is_launch))
}

struct LaunchLayer;

impl<S: Subscriber> Layer<S> for LaunchLayer {
    fn on_new_span(&self, _: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        LAUNCHES.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts the kernels launched on a CubeCL device from [`start`](LaunchCounter::start) to
/// [`count`](LaunchCounter::count). Both wait for the device first, so that the operations
/// Burn's fusion has queued are launched (and counted) in the phase that queued them.
///
/// The count is process-wide: launches from other threads in between are counted too.
#[derive(Debug, Clone)]
pub struct LaunchCounter<B: Backend> {
    device: B::Device,
    start: u64,
}

impl<B: Backend> LaunchCounter<B> {
    /// A counter for `device`, started; `None` where launches are not counted: a backend
    /// that does not launch CubeCL kernels (flex, ndarray), or a process whose subscriber
    /// lacks [`launch_layer`]. Tells them apart by a small sum on the device, which launches
    /// at least one kernel on a CubeCL backend.
    pub fn new(device: &B::Device) -> Result<Option<Self>, Error> {
        sync::<B>(device)?;
        let before = LAUNCHES.load(Ordering::Relaxed);
        let probe = Tensor::<B, 1>::ones([64], device).sum();
        probe
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| Error::Readback {
                what: "the kernel-launch probe",
                reason: format!("{e:?}"),
            })?;
        sync::<B>(device)?;
        let launched = LAUNCHES.load(Ordering::Relaxed) > before;
        Ok(launched.then(|| Self {
            device: device.clone(),
            start: LAUNCHES.load(Ordering::Relaxed),
        }))
    }

    /// Waits for the device and starts counting from zero.
    pub fn start(&mut self) -> Result<(), Error> {
        sync::<B>(&self.device)?;
        self.start = LAUNCHES.load(Ordering::Relaxed);
        Ok(())
    }

    /// Waits for the device and returns the launches since [`start`](Self::start) (or
    /// [`new`](Self::new)).
    pub fn count(&self) -> Result<u64, Error> {
        sync::<B>(&self.device)?;
        Ok(LAUNCHES.load(Ordering::Relaxed) - self.start)
    }

    /// [`count`](Self::count), then [`start`](Self::start) again: the launches of the phase
    /// that just ended.
    pub fn lap(&mut self) -> Result<u64, Error> {
        let n = self.count()?;
        self.start = LAUNCHES.load(Ordering::Relaxed);
        Ok(n)
    }
}

fn sync<B: Backend>(device: &B::Device) -> Result<(), Error> {
    B::sync(device).map_err(|e| Error::Readback {
        what: "the kernel-launch count (waiting for the device)",
        reason: format!("{e:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Flex, NdArray};
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn cpu_backends_count_nothing() {
        let subscriber = tracing_subscriber::registry().with(launch_layer());
        tracing::subscriber::with_default(subscriber, || {
            let counter = LaunchCounter::<Flex>::new(&Default::default()).expect("flex");
            assert!(counter.is_none(), "flex launches no CubeCL kernels");
            let counter = LaunchCounter::<NdArray>::new(&Default::default()).expect("ndarray");
            assert!(counter.is_none(), "ndarray launches no CubeCL kernels");
        });
    }

    #[test]
    fn only_the_launch_span_is_counted() {
        let subscriber = tracing_subscriber::registry().with(launch_layer());
        tracing::subscriber::with_default(subscriber, || {
            let before = LAUNCHES.load(Ordering::Relaxed);
            let _other = tracing::trace_span!("launch_inner").entered();
            assert_eq!(LAUNCHES.load(Ordering::Relaxed), before);
        });
    }
}
