//! Host buffers to the training device without making the host wait.
//!
//! A plain copy from ordinary (pageable) host memory to a CUDA device synchronises the stream: the host waits
//! for the copy, and with it for every kernel queued before it, once per tensor of every batch. Copying from
//! pinned memory with `non_blocking` only queues the copy; libtorch's pinned-memory allocator keeps the
//! buffer alive until the copy has run. Buffers are pinned with libtorch's `_pin_memory`: `pin_memory` with a
//! device argument (the only form tch offers) logs a deprecation warning on every call.

use tch::{Device, Kind, TchError, Tensor};

/// `bytes` (elements of `kind`, native byte order) as a host tensor of `shape` that `device` can copy without
/// the host waiting: on CUDA pinned, filled straight from `bytes` (one copy); elsewhere an ordinary tensor.
pub fn host_tensor(
    bytes: &[u8],
    shape: &[i64],
    kind: Kind,
    device: Device,
) -> Result<Tensor, TchError> {
    let elements: i64 = shape.iter().product();
    if elements < 0 || elements as usize * kind.elt_size_in_bytes() != bytes.len() {
        return Err(TchError::Shape(format!(
            "{} bytes are not a {kind:?} tensor of shape {shape:?}",
            bytes.len()
        )));
    }
    if device.is_cuda() {
        // SAFETY: the view borrows `bytes`, whose length was checked against the shape, and lives only until
        // `_pin_memory` has copied it into the pinned tensor it returns.
        let view = unsafe { Tensor::f_from_blob(bytes.as_ptr(), shape, &[], kind, Device::Cpu)? };
        view.f_internal_pin_memory(device)
    } else {
        Tensor::f_from_data_size(bytes, shape, kind)
    }
}

/// f32 values as a [`host_tensor`] of `shape` for `device`.
pub fn host_f32(values: &[f32], shape: &[i64], device: Device) -> Result<Tensor, TchError> {
    host_tensor(bytemuck::cast_slice(values), shape, Kind::Float, device)
}

/// f32 values of `shape` on `device`, through a [`host_f32`] so the copy does not make the host wait.
pub fn f32_on_device(values: &[f32], shape: &[i64], device: Device) -> Result<Tensor, TchError> {
    to_device_async(&host_f32(values, shape, device)?, device)
}

/// `t` (a [`host_tensor`]) on `device`: on CUDA a non-blocking copy (from pageable memory it would still be
/// correct, only synchronous), elsewhere a plain `to_device` (a no-op on the CPU).
pub fn to_device_async(t: &Tensor, device: Device) -> Result<Tensor, TchError> {
    if device.is_cuda() && t.device() == Device::Cpu {
        t.f_to_device_(device, t.kind(), true, false)
    } else {
        t.f_to_device(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_the_cpu_the_tensor_comes_back_unchanged() {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        let moved = to_device_async(&t, Device::Cpu).unwrap();
        assert!(moved.equal(&t));
        assert_eq!(moved.device(), Device::Cpu);
    }

    #[test]
    fn host_tensors_hold_the_bytes_and_refuse_a_shape_they_do_not_fill() {
        let values = [1.5f32, -2.0, 3.25, 4.0, 0.0, 7.0];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let t = host_tensor(&bytes, &[2, 3], Kind::Float, Device::Cpu).unwrap();
        assert_eq!(t.size(), [2, 3]);
        assert_eq!(Vec::<f32>::try_from(t.flatten(0, -1)).unwrap(), values);
        let flags = host_tensor(&[1, 0, 1], &[3], Kind::Bool, Device::Cpu).unwrap();
        assert_eq!(Vec::<bool>::try_from(flags).unwrap(), [true, false, true]);
        let err = host_tensor(&bytes, &[2, 2], Kind::Float, Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("24 bytes"), "{err}");
    }
}
