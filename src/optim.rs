//! Adam, written out so its state can be checkpointed: a resumed run continues
//! exactly where the interrupted one stopped (libtorch's C++ optimizers expose
//! no state through tch).

use std::path::Path;

use tch::{Kind, Tensor};

use crate::{Error, Result};

/// Adam (Kingma & Ba 2015) over a named set of parameters.
pub struct Adam {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Adam's step count t (bias correction).
    pub step: i64,
    /// Decoupled weight decay λ (AdamW, Loshchilov & Hutter 2019): each step first
    /// shrinks every weight matrix and kernel (tensors of 2 or more dimensions; not
    /// biases, norm scales or a likelihood's scale) by a factor 1 − lr·λ. 0: plain Adam.
    pub weight_decay: f64,
    /// Update CPU parameters in one fused pass (see [`fused_cpu_step`]);
    /// false forces the libtorch-op path everywhere (for tests and benchmarks).
    pub fused_cpu: bool,
    params: Vec<(String, Tensor)>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    /// One work buffer per parameter for the libtorch-op path, made on its
    /// first use (the fused CPU path needs none): the step then allocates
    /// nothing (fresh temporaries of a 54 MB weight cost more than the arithmetic).
    scratch: Vec<Option<Tensor>>,
}

impl Adam {
    /// params: (name, trainable tensor) pairs, e.g. from `VarStore::variables()`.
    pub fn new(mut params: Vec<(String, Tensor)>, learning_rate: f64, betas: (f64, f64)) -> Self {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        params.retain(|(_, t)| t.requires_grad());
        let exp_avg = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let exp_avg_sq = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let scratch = params.iter().map(|_| None).collect();
        Adam {
            learning_rate,
            beta1: betas.0,
            beta2: betas.1,
            eps: 1e-8,
            step: 0,
            weight_decay: 0.0,
            fused_cpu: true,
            params,
            exp_avg,
            exp_avg_sq,
            scratch,
        }
    }

    /// The same optimiser with decoupled weight decay λ (see [`Adam::weight_decay`]).
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Trainable variables of `vs` whose names start with `prefix`.
    pub fn for_prefix(vs: &tch::nn::VarStore, prefix: &str, learning_rate: f64, betas: (f64, f64)) -> Self {
        let params = vs.variables().into_iter().filter(|(name, _)| name.starts_with(prefix)).collect();
        Adam::new(params, learning_rate, betas)
    }

    /// Turns gradient tracking of this optimizer's parameters off or on
    /// (off: a backward pass through them computes no gradients for them).
    pub fn set_trainable(&self, trainable: bool) {
        for (_, p) in &self.params {
            let _ = p.set_requires_grad(trainable);
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in self.params.iter_mut() {
            p.zero_grad();
        }
    }

    /// Back-propagates `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    /// One Adam update from the current gradients.
    pub fn step(&mut self) {
        self.step += 1;
        let bias1 = 1.0 - self.beta1.powi(self.step as i32);
        let bias2 = 1.0 - self.beta2.powi(self.step as i32);
        let step_size = self.learning_rate / bias1;
        let coefficients = AdamCoefficients {
            one_minus_beta1: (1.0 - self.beta1) as f32,
            one_minus_beta2: (1.0 - self.beta2) as f32,
            inv_sqrt_bias2: (1.0 / bias2.sqrt()) as f32,
            eps: self.eps as f32,
            step_size: step_size as f32,
        };
        tch::no_grad(|| {
            let moments = self.exp_avg.iter_mut().zip(self.exp_avg_sq.iter_mut());
            for (((_, p), (m, v)), w) in self.params.iter_mut().zip(moments).zip(self.scratch.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                if self.weight_decay > 0.0 && p.dim() >= 2 {
                    let _ = p.g_mul_scalar_(1.0 - self.learning_rate * self.weight_decay);
                }
                if self.fused_cpu && fused_cpu_step(p, &g, m, v, &coefficients) {
                    continue;
                }
                // Elsewhere (a GPU): the same update as libtorch ops.
                let w = w.get_or_insert_with(|| p.zeros_like());
                // m ← β1·m + (1 − β1)·g
                let _ = m.lerp_(&g, 1.0 - self.beta1);
                // v ← β2·v + (1 − β2)·g²
                w.copy_(&g);
                let _ = w.g_mul_(&g);
                let _ = v.lerp_(w, 1.0 - self.beta2);
                // p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε), the step size folded into the divisor
                let _ = v.sqrt_out(w);
                let _ = w.g_div_scalar_(bias2.sqrt());
                let _ = w.g_add_scalar_(self.eps);
                let _ = w.g_div_scalar_(-step_size);
                let _ = p.addcdiv_(m, w);
            }
        });
    }

    /// Saves the moments and the step count to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let step = Tensor::from_slice(&[self.step]);
        let mut named: Vec<(String, Tensor)> = vec![("step".to_string(), step)];
        for ((name, _), (m, v)) in self.params.iter().zip(self.exp_avg.iter().zip(&self.exp_avg_sq)) {
            named.push((format!("exp_avg.{name}"), m.to_device(tch::Device::Cpu)));
            named.push((format!("exp_avg_sq.{name}"), v.to_device(tch::Device::Cpu)));
        }
        Tensor::write_safetensors(&named, path)
            .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Restores the state written by [`Adam::save`] for the same parameters.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let err = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
        let named = Tensor::read_safetensors(path).map_err(|e| err(format!("unreadable optimizer state: {e}")))?;
        let map: std::collections::HashMap<String, Tensor> = named.into_iter().collect();
        let step = map.get("step").ok_or_else(|| err("no `step` in optimizer state".into()))?;
        self.step = step.int64_value(&[0]);
        for ((name, p), (m, v)) in self.params.iter().zip(self.exp_avg.iter_mut().zip(self.exp_avg_sq.iter_mut())) {
            for (prefix, slot) in [("exp_avg", &mut *m), ("exp_avg_sq", &mut *v)] {
                let key = format!("{prefix}.{name}");
                let src = map.get(&key).ok_or_else(|| err(format!("no `{key}` in optimizer state")))?;
                if src.size() != p.size() {
                    return Err(err(format!("`{key}` has shape {:?}, the model's has {:?}", src.size(), p.size())));
                }
                tch::no_grad(|| slot.copy_(&src.to_kind(Kind::Float)));
            }
        }
        Ok(())
    }
}

/// The per-step constants of the update, in the precision of the parameters.
struct AdamCoefficients {
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    /// 1 / √(1 − β2^t)
    inv_sqrt_bias2: f32,
    eps: f32,
    /// lr / (1 − β1^t)
    step_size: f32,
}

/// The whole Adam update of one CPU parameter in a single pass over its four
/// arrays, instead of the nine libtorch ops (nine passes over memory) of the
/// portable path: the optimizer step of the MLP models is memory-bound, so
/// passes are what it costs. Returns false, changing nothing, when any tensor
/// is not a contiguous f32 CPU tensor of the parameter's size.
fn fused_cpu_step(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, c: &AdamCoefficients) -> bool {
    let n = p.numel();
    let usable =
        |t: &Tensor| t.device() == tch::Device::Cpu && t.kind() == Kind::Float && t.is_contiguous() && t.numel() == n;
    if !(usable(p) && usable(g) && usable(m) && usable(v)) {
        return false;
    }
    if n == 0 {
        return true;
    }
    // SAFETY: the four tensors are contiguous f32 CPU tensors of n elements
    // (checked above), so each data pointer addresses n valid f32. They are
    // distinct allocations: p is a leaf parameter, g its gradient, and m, v
    // this optimizer's own buffers (zeros_like). Nothing else touches them
    // during the step: it runs under no_grad, between backward passes.
    let (p, g, m, v) = unsafe {
        (
            std::slice::from_raw_parts_mut(p.data_ptr() as *mut f32, n),
            std::slice::from_raw_parts(g.data_ptr() as *const f32, n),
            std::slice::from_raw_parts_mut(m.data_ptr() as *mut f32, n),
            std::slice::from_raw_parts_mut(v.data_ptr() as *mut f32, n),
        )
    };
    // One thread: a second pool (rayon's) beside libtorch's spinning OpenMP
    // threads made small-batch steps slower (report/DECISIONS.md, "Fused Adam on one thread").
    adam_kernel(p, g, m, v, c);
    true
}

/// m ← m + (1 − β1)(g − m); v ← v + (1 − β2)(g² − v); p ← p − s·m / (√v·k + ε),
/// element by element: the libtorch path's formulas (lerp, then the divisor).
/// Uses 8-wide AVX2 when the CPU has it (checked once per call, at run time),
/// else the baseline build's 4-wide SSE2; both need the crate built with
/// opt-level ≥ 2, where LLVM vectorises loops (Cargo.toml sets it for dev).
fn adam_kernel(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: &AdamCoefficients) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { adam_kernel_avx2(p, g, m, v, c) };
    }
    adam_kernel_portable(p, g, m, v, c)
}

/// The same loop compiled for AVX2 (the body is inlined here, so LLVM
/// vectorises it with 256-bit registers).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adam_kernel_avx2(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: &AdamCoefficients) {
    adam_kernel_portable(p, g, m, v, c)
}

#[inline(always)]
fn adam_kernel_portable(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: &AdamCoefficients) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m += c.one_minus_beta1 * (g - *m);
        *v += c.one_minus_beta2 * (g * g - *v);
        *p -= c.step_size * *m / (v.sqrt() * c.inv_sqrt_bias2 + c.eps);
    }
}
