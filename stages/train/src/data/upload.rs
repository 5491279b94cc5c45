//! Host buffers to the training device without making the host wait.
//!
//! A plain copy from ordinary (pageable) host memory to a CUDA device synchronises the stream: the host waits
//! for the copy, and with it for every kernel queued before it, once per tensor of every batch. Copying from
//! pinned memory with `non_blocking` only queues the copy; libtorch's pinned-memory allocator keeps the
//! buffer alive until the copy has run.

use tch::{Device, TchError, Tensor};

/// `t` (on the host) on `device`: on CUDA through pinned memory and a non-blocking copy, elsewhere a plain
/// `to_device` (a no-op on the CPU).
pub fn to_device_async(t: &Tensor, device: Device) -> Result<Tensor, TchError> {
    if device.is_cuda() && t.device() == Device::Cpu {
        t.f_pin_memory(device)?
            .f_to_device_(device, t.kind(), true, false)
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
}
