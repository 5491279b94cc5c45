//! libtorch's fused Adam kernel on the CPU (`at::_fused_adam_`, what `torch.optim.Adam(fused=True)` runs).
//!
//! One pass over each variable's weights, gradient and moments instead of the seven elementwise passes of
//! [`super::adam`]'s own update: on the 2-core CPU the optimizer's share of a step fell from 38-55 ms to 26-31 ms
//! (BENCHMARKS.md, "Fused Adam on the CPU"). tch does not wrap the operator, so its dispatcher entry
//! `at::_ops::_fused_adam_::call` is declared here by its Itanium-mangled name (a missing symbol fails the link,
//! not a run). Its arguments are `c10::ArrayRef<at::Tensor>` lists (pointer and length, by value), five doubles,
//! two bools and two `const std::optional<at::Tensor>&`.
//!
//! A C++ exception cannot cross into Rust, so [`fused_adam_cpu`] checks what the kernel would refuse before
//! calling it: CPU f32 tensors, contiguous, equal sizes per variable, equal list lengths. The kernel reads
//! each tensor through its data pointer and element count, which is why they must be contiguous.

use std::ffi::c_void;

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use super::adam::{AdamParams, Part};

/// `c10::ArrayRef<at::Tensor>`: a pointer to `len` `at::Tensor`s, each a single `TensorImpl` pointer.
#[repr(C)]
struct TensorList {
    data: *const *mut c_void,
    len: usize,
}

/// libstdc++'s `std::optional<at::Tensor>`: the tensor's storage, then whether it holds one.
#[repr(C)]
struct OptionalTensor {
    tensor: *mut c_void,
    engaged: bool,
}

extern "C" {
    #[link_name = "_ZN2at4_ops12_fused_adam_4callEN3c108ArrayRefINS_6TensorEEES5_S5_S5_S5_S5_dddddbbRKSt8optionalIS4_ES9_"]
    #[allow(clippy::too_many_arguments)]
    fn fused_adam_call(
        params: TensorList,
        grads: TensorList,
        exp_avgs: TensorList,
        exp_avg_sqs: TensorList,
        max_exp_avg_sqs: TensorList,
        state_steps: TensorList,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        amsgrad: bool,
        maximize: bool,
        grad_scale: *const OptionalTensor,
        found_inf: *const OptionalTensor,
    );
}

/// Applies Adam step `t` (counted from 1) to every variable in place: `m` and `v` take the gradient, the
/// weights move by `lr · m̂ / (√v̂ + ε)`, as the module doc of [`super::adam`] writes it.
pub(super) fn fused_adam_cpu(variables: &[Part], t: u64, params: &AdamParams) -> Result<()> {
    if variables.is_empty() {
        return Ok(());
    }
    if t == 0 {
        bail!("fused Adam: step counts start at 1");
    }
    for (i, var) in variables.iter().enumerate() {
        let numel = var.weights.numel();
        for (what, x) in [
            ("weights", &var.weights),
            ("gradient", &var.grad),
            ("first moment", &var.m),
            ("second moment", &var.v),
        ] {
            if x.device() != Device::Cpu || x.kind() != Kind::Float || !x.is_contiguous() {
                bail!(
                    "fused Adam: variable {i}'s {what} is not a contiguous f32 CPU tensor ({:?}, {:?})",
                    x.device(),
                    x.kind()
                );
            }
            if x.numel() != numel {
                bail!(
                    "fused Adam: variable {i}'s {what} has {} elements, its weights {numel}",
                    x.numel()
                );
            }
        }
    }
    // The kernel reads each variable's step from its own tensor; one f32 tensor serves them all.
    let step = Tensor::from(t as f32);
    let weights = pointers(variables.iter().map(|x| &x.weights));
    let grads = pointers(variables.iter().map(|x| &x.grad));
    let m = pointers(variables.iter().map(|x| &x.m));
    let v = pointers(variables.iter().map(|x| &x.v));
    let steps = vec![impl_pointer(&step); variables.len()];
    let list = |xs: &Vec<*mut c_void>| TensorList {
        data: xs.as_ptr(),
        len: xs.len(),
    };
    let none = OptionalTensor {
        tensor: std::ptr::null_mut(),
        engaged: false,
    };
    // SAFETY: the lists point at `at::Tensor` values (bit copies of tensors that `variables` and `step` keep
    // alive for the call; the kernel takes no ownership); every check the kernel makes was made above.
    unsafe {
        fused_adam_call(
            list(&weights),
            list(&grads),
            list(&m),
            list(&v),
            TensorList {
                data: std::ptr::null(),
                len: 0,
            },
            list(&steps),
            params.lr,
            params.beta1,
            params.beta2,
            0.0,
            params.eps,
            false,
            false,
            &none,
            &none,
        );
    }
    Ok(())
}

/// The `at::Tensor` values of `tensors`, as `c10::ArrayRef` wants them laid out.
fn pointers<'a>(tensors: impl Iterator<Item = &'a Tensor>) -> Vec<*mut c_void> {
    tensors.map(impl_pointer).collect()
}

/// The `TensorImpl` pointer that is the whole of an `at::Tensor` (tch's tensor handle points at one).
fn impl_pointer(t: &Tensor) -> *mut c_void {
    // SAFETY: tch's handle is a heap-allocated `at::Tensor`, a single intrusive pointer.
    unsafe { *(t.as_ptr() as *const *mut c_void) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook Adam in f64 over three steps with changing gradients, against the kernel on three variables
    /// of different lengths (one longer than the kernel's parallel grain).
    #[test]
    fn fused_steps_match_textbook_adam() {
        let params = AdamParams {
            lr: 0.01,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
        };
        tch::manual_seed(3);
        let sizes = [5i64, 1, 70_001];
        let weights: Vec<Tensor> = sizes
            .iter()
            .map(|&n| Tensor::randn([n], (Kind::Float, Device::Cpu)))
            .collect();
        let m: Vec<Tensor> = weights.iter().map(Tensor::zeros_like).collect();
        let v: Vec<Tensor> = weights.iter().map(Tensor::zeros_like).collect();
        let f64s = |t: &Tensor| Vec::<f64>::try_from(t.to_kind(Kind::Double)).unwrap();
        let mut reference: Vec<[Vec<f64>; 3]> = weights
            .iter()
            .map(|w| [f64s(w), vec![0.0; w.numel()], vec![0.0; w.numel()]])
            .collect();
        for t in 1..=3u64 {
            let grads: Vec<Tensor> = sizes
                .iter()
                .map(|&n| Tensor::randn([n], (Kind::Float, Device::Cpu)) * t as f64)
                .collect();
            // Views of the same storage, so the kernel's updates land in `weights`, `m` and `v`.
            let vars: Vec<Part> = (0..sizes.len())
                .map(|i| Part {
                    weights: weights[i].shallow_clone(),
                    grad: grads[i].shallow_clone(),
                    m: m[i].shallow_clone(),
                    v: v[i].shallow_clone(),
                })
                .collect();
            fused_adam_cpu(&vars, t, &params).unwrap();
            for ([w, mm, vv], g) in reference.iter_mut().zip(&grads) {
                let bc1 = 1.0 - params.beta1.powi(t as i32);
                let bc2 = 1.0 - params.beta2.powi(t as i32);
                for (i, g) in f64s(g).into_iter().enumerate() {
                    mm[i] = params.beta1 * mm[i] + (1.0 - params.beta1) * g;
                    vv[i] = params.beta2 * vv[i] + (1.0 - params.beta2) * g * g;
                    w[i] -= params.lr * (mm[i] / bc1) / ((vv[i] / bc2).sqrt() + params.eps);
                }
            }
        }
        for (i, [w, mm, vv]) in reference.iter().enumerate() {
            for (got, want, what) in [(&weights[i], w, "w"), (&m[i], mm, "m"), (&v[i], vv, "v")] {
                let got = f64s(got);
                let worst = got
                    .iter()
                    .zip(want)
                    // f32 rounding of terms of order one; the updates are of order lr = 1e-2.
                    .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                    .fold(0.0, f64::max);
                assert!(worst < 1e-5, "variable {i} {what}: error {worst}");
            }
        }
    }

    #[test]
    fn tensors_the_kernel_would_refuse_are_an_error() {
        let w = Tensor::zeros([4], (Kind::Float, Device::Cpu));
        let short = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        let double = Tensor::zeros([4], (Kind::Double, Device::Cpu));
        let strided = Tensor::zeros([8], (Kind::Float, Device::Cpu)).slice(0, 0, 8, 2);
        for (bad, says) in [
            (&short, "3 elements"),
            (&double, "not a contiguous f32"),
            (&strided, "not a contiguous f32"),
        ] {
            let vars = [Part {
                weights: w.shallow_clone(),
                grad: bad.shallow_clone(),
                m: w.zeros_like(),
                v: w.zeros_like(),
            }];
            let err = fused_adam_cpu(&vars, 1, &AdamParams::default()).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
        assert_eq!(Vec::<f32>::try_from(&w).unwrap(), [0.0; 4]);
    }
}
