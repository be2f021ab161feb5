//! Running a CubeCL program on the tensors of code that is generic over `B: Backend`.
//!
//! The simulator's tensors are Burn tensors of whatever backend the binary picked. When that
//! backend is one of CubeCL's (wgpu or cuda, with or without Burn's operation fusion, 32-bit
//! floats), [`run`] hands the program the underlying [`CubeTensor`]s, so that a whole step runs
//! as a few hand-written kernels instead of hundreds of tensor operations; on any other backend
//! it gives the inputs back and the caller takes its tensor-op path. The backend is found at
//! run time by its type (`TypeId`), as `rl_modules::fused` does for the layer op, so generic
//! code needs no new trait bound.
//!
//! Under fusion the inputs are first resolved (the queued operations that produce them run),
//! and the outputs are registered with the fusion client as fresh tensors, so that they take
//! part in later fused operations like any other.

use core::any::{Any, TypeId};

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, IntElement};
use cubecl::prelude::{CubeCount, CubeDim};

/// A computation written for CubeCL runtimes: takes float tensors and returns float tensors.
pub trait CubeProgram {
    /// Runs the program on `inputs` (all on one device, `f32`, contiguous); returns its
    /// outputs.
    fn run<R: CubeRuntime>(self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>>;
}

/// Runs `program` on `inputs` when `B` is a CubeCL backend with `f32` floats; otherwise gives
/// the program and the inputs back untouched.
///
/// # Errors
/// The program and its inputs, when `B` is not such a backend.
#[allow(clippy::type_complexity)]
pub fn run<B: Backend, P: CubeProgram>(
    program: P,
    inputs: Vec<FloatTensor<B>>,
) -> Result<Vec<FloatTensor<B>>, (P, Vec<FloatTensor<B>>)> {
    let parts = (program, inputs);
    #[cfg(feature = "wgpu")]
    let parts = {
        use cubecl::wgpu::WgpuRuntime;
        let parts = match fused::<B, P, WgpuRuntime, i32, u32>(parts) {
            Ok(out) => return Ok(out),
            Err(parts) => parts,
        };
        match plain::<B, P, WgpuRuntime, i32, u32>(parts) {
            Ok(out) => return Ok(out),
            Err(parts) => parts,
        }
    };
    #[cfg(feature = "cuda")]
    let parts = {
        use cubecl::cuda::CudaRuntime;
        let parts = match fused::<B, P, CudaRuntime, i32, u8>(parts) {
            Ok(out) => return Ok(out),
            Err(parts) => parts,
        };
        match plain::<B, P, CudaRuntime, i32, u8>(parts) {
            Ok(out) => return Ok(out),
            Err(parts) => parts,
        }
    };
    Err(parts)
}

/// The inputs as the kernels index them: dense, row-major.
fn contiguous<R: CubeRuntime>(inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
    inputs.into_iter().map(into_contiguous).collect()
}

/// The launch of a kernel with one thread per environment, for `n` environments.
pub fn per_environment(n: usize) -> (CubeCount, CubeDim) {
    const THREADS: usize = 64;
    let cubes = u32::try_from(n.div_ceil(THREADS)).unwrap_or(u32::MAX);
    (
        CubeCount::Static(cubes, 1, 1),
        CubeDim::new_1d(THREADS as u32),
    )
}

/// Fresh `f32` tensors of `shapes` on the device of `like`, for a kernel's outputs.
pub fn empty_outputs<R: CubeRuntime>(
    like: &CubeTensor<R>,
    shapes: Vec<Vec<usize>>,
) -> Vec<CubeTensor<R>> {
    shapes
        .into_iter()
        .map(|shape| empty_device::<R, f32>(like.client.clone(), like.device.clone(), shape.into()))
        .collect()
}

/// Moves `value` into a `U` when `T` and `U` are the same type; gives it back otherwise.
fn cast<T: 'static, U: 'static>(value: T) -> Result<U, T> {
    let mut slot = Some(value);
    let any: &mut dyn Any = &mut slot;
    if let Some(value) = any.downcast_mut::<Option<U>>().and_then(Option::take) {
        return Ok(value);
    }
    match slot {
        Some(value) => Err(value),
        None => unreachable!("only a successful downcast takes the value"),
    }
}

fn cast_all<T: 'static, U: 'static>(values: Vec<T>) -> Vec<U> {
    values
        .into_iter()
        .map(|v| cast::<T, U>(v).unwrap_or_else(|_| unreachable!("the backend type was checked")))
        .collect()
}

type Parts<P, B> = (P, Vec<FloatTensor<B>>);

/// `B` is `CubeBackend<R, f32, I, BT>` itself.
fn plain<B: Backend, P: CubeProgram, R: CubeRuntime, I: IntElement, BT: BoolElement>(
    parts: Parts<P, B>,
) -> Result<Vec<FloatTensor<B>>, Parts<P, B>> {
    if TypeId::of::<B>() != TypeId::of::<CubeBackend<R, f32, I, BT>>() {
        return Err(parts);
    }
    let (program, inputs) = parts;
    let inputs: Vec<CubeTensor<R>> = cast_all(inputs);
    Ok(cast_all(program.run(contiguous(inputs))))
}

/// `B` is `Fusion<CubeBackend<R, f32, I, BT>>`, what Burn's `Wgpu` and `Cuda` are by default.
fn fused<B: Backend, P: CubeProgram, R: CubeRuntime, I: IntElement, BT: BoolElement>(
    parts: Parts<P, B>,
) -> Result<Vec<FloatTensor<B>>, Parts<P, B>> {
    use burn::tensor::TensorMetadata;
    use burn_cubecl::fusion::FusionCubeRuntime;
    use burn_cubecl_fusion::CubeFusionHandle;
    use burn_fusion::stream::OperationStreams;
    use burn_fusion::{Fusion, FusionTensor, NoOp};
    use burn_ir::{InitOperationIr, OperationIr, OperationOutput};

    type Inner<R, I, BT> = CubeBackend<R, f32, I, BT>;
    if TypeId::of::<B>() != TypeId::of::<Fusion<Inner<R, I, BT>>>() {
        return Err(parts);
    }
    let (program, inputs) = parts;
    let inputs: Vec<FusionTensor<FusionCubeRuntime<R>>> = cast_all(inputs);
    let Some(client) = inputs.first().map(|t| t.client.clone()) else {
        return Ok(Vec::new());
    };
    let resolved = inputs
        .into_iter()
        .map(|t| client.resolve_tensor_float::<Inner<R, I, BT>>(t))
        .collect();
    let outputs = program
        .run(contiguous(resolved))
        .into_iter()
        .map(|out| {
            let (shape, dtype) = (out.shape(), out.dtype);
            let handle = CubeFusionHandle::from(out);
            let desc =
                InitOperationIr::create(shape, dtype, || client.register_tensor_handle(handle));
            client
                .register(
                    OperationStreams::default(),
                    OperationIr::Init(desc),
                    NoOp::<Inner<R, I, BT>>::new(),
                )
                .output()
        })
        .collect();
    Ok(cast_all(outputs))
}
