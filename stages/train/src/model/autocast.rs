//! CUDA fp16 autocast through libtorch's device-typed switches.
//!
//! tch 0.24's `autocast` reads and sets the switch with `at::autocast::is_enabled` / `set_enabled`, which
//! libtorch 2.11 deprecates and answers with a warning on every call (five per training step in fp16 runs on
//! an H200). Their replacements, `is_autocast_enabled(DeviceType)` and `set_autocast_enabled(DeviceType,
//! bool)`, are exported by libtorch_cpu but not wrapped by torch-sys, so they are declared here by their
//! Itanium-mangled names: plain integer arguments, no exceptions (they only flip a thread-local dispatch key),
//! and a missing symbol fails the link, not a run. The nesting counter and the cast cache go through
//! torch-sys as tch does. The switch only changes how CUDA tensors dispatch; CPU tensors ignore it.

/// `c10::DeviceType::CUDA` (`enum class DeviceType : int8_t`).
const CUDA: i8 = 1;

extern "C" {
    #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
    fn is_autocast_enabled(device_type: i8) -> bool;
    #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
    fn set_autocast_enabled(device_type: i8, enabled: bool);
}

/// Runs `f` under CUDA fp16 autocast when `enabled`, plainly otherwise. The previous state comes back when `f`
/// returns or panics.
pub fn cuda_autocast<T>(enabled: bool, f: impl FnOnce() -> T) -> T {
    if !enabled {
        return f();
    }
    let _scope = AutocastScope::enter();
    f()
}

/// Whether CUDA autocast is on for this thread.
pub fn cuda_autocast_enabled() -> bool {
    // SAFETY: reads a thread-local flag; takes a plain integer, cannot throw.
    unsafe { is_autocast_enabled(CUDA) }
}

/// CUDA autocast switched on until dropped.
struct AutocastScope {
    previous: bool,
}

impl AutocastScope {
    fn enter() -> Self {
        let previous = cuda_autocast_enabled();
        // SAFETY: flips a thread-local flag and counter; torch-sys's wrapper catches C++ exceptions.
        unsafe {
            set_autocast_enabled(CUDA, true);
            torch_sys::at_autocast_increment_nesting();
        }
        Self { previous }
    }
}

impl Drop for AutocastScope {
    fn drop(&mut self) {
        // SAFETY: as in `enter`; the cast cache is cleared when the outermost scope ends, as libtorch expects.
        unsafe {
            if torch_sys::at_autocast_decrement_nesting() == 0 {
                torch_sys::at_autocast_clear_cache();
            }
            set_autocast_enabled(CUDA, self.previous);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_switches_autocast_on_and_restores_it_nested() {
        assert!(!cuda_autocast_enabled());
        let seen = cuda_autocast(true, || {
            let inner = cuda_autocast(true, cuda_autocast_enabled);
            let plain = cuda_autocast(false, cuda_autocast_enabled);
            (
                cuda_autocast_enabled(),
                inner,
                plain,
                cuda_autocast_enabled(),
            )
        });
        assert_eq!(seen, (true, true, true, true));
        assert!(!cuda_autocast_enabled());
        assert!(!cuda_autocast(false, cuda_autocast_enabled));
    }

    #[test]
    fn a_panic_inside_restores_the_switch() {
        let caught = std::panic::catch_unwind(|| cuda_autocast(true, || panic!("inside autocast")));
        assert!(caught.is_err());
        assert!(!cuda_autocast_enabled());
    }

    /// CPU tensors ignore the CUDA switch: a matmul inside the scope keeps f32.
    #[test]
    fn cpu_tensors_keep_their_kind_inside() {
        let x = tch::Tensor::ones([2, 2], (tch::Kind::Float, tch::Device::Cpu));
        let y = cuda_autocast(true, || x.matmul(&x));
        assert_eq!(y.kind(), tch::Kind::Float);
    }
}
