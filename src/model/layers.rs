//! Building blocks of the improved CGAN: layers with optional spectral
//! normalisation, and conditional batch norm.
//!
//! - [`SpectralNorm`] (Miyato et al. 2018): divides a weight by an estimate of
//!   its largest singular value, kept up to date by one power iteration per
//!   training forward pass, so each layer is (about) 1-Lipschitz.
//! - [`Dense`] and [`Conv`]: a linear layer and a convolution that use it when asked.
//! - [`with_minibatch_std`] (Karras et al. 2018): the batch's feature spread as one more channel.
//! - [`ConditionalBatchNorm`] (de Vries et al. 2017, Dumoulin et al. 2017):
//!   batch norm whose scale and shift are predicted from the condition, so the
//!   condition reaches every layer it is used in, not only the input.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// Power-iteration state of one spectrally normalised weight: the current
/// estimates of its first left (`u`, [out]) and right (`v`, [in·k·k]) singular vectors.
/// Saved with the model (non-trainable variables), so a resumed run continues the iteration.
#[derive(Debug)]
pub struct SpectralNorm {
    u: Tensor,
    v: Tensor,
}

/// Added to norms before dividing (as in PyTorch's `spectral_norm`).
const SN_EPS: f64 = 1e-12;

fn unit(xs: &Tensor) -> Tensor {
    xs / (xs.norm().double_value(&[]) + SN_EPS)
}

impl SpectralNorm {
    /// weight: [out, ...] (a linear [out, in] or a convolution [out, in, kh, kw]).
    pub fn new(vs: &nn::Path, weight: &Tensor) -> Self {
        let size = weight.size();
        let cols: i64 = size[1..].iter().product();
        let mut u = vs.zeros_no_train("sn_u", &[size[0]]);
        let mut v = vs.zeros_no_train("sn_v", &[cols]);
        tch::no_grad(|| {
            u.copy_(&unit(&Tensor::randn([size[0]], (Kind::Float, weight.device()))));
            v.copy_(&unit(&Tensor::randn([cols], (Kind::Float, weight.device()))));
        });
        SpectralNorm { u, v }
    }

    /// σ(W) ≈ uᵀ W v. In training, first one power iteration updates u and v
    /// (no gradient flows through them; the gradient flows through W).
    pub fn sigma(&self, weight: &Tensor, train: bool) -> Tensor {
        let mat = weight.view([weight.size()[0], -1]);
        let (u, v) = tch::no_grad(|| {
            if train {
                let v = unit(&mat.tr().mv(&self.u));
                let u = unit(&mat.mv(&v));
                // Shallow handles share storage: the copies update the saved variables.
                self.u.shallow_clone().copy_(&u);
                self.v.shallow_clone().copy_(&v);
            }
            (self.u.copy(), self.v.copy())
        });
        u.dot(&mat.mv(&v))
    }

    /// W / σ(W).
    pub fn normalize(&self, weight: &Tensor, train: bool) -> Tensor {
        weight / self.sigma(weight, train)
    }
}

/// The weight a layer applies: W / σ(W) when spectrally normalised, else W.
fn applied_weight(ws: &Tensor, sn: Option<&SpectralNorm>, train: bool) -> Tensor {
    match sn {
        Some(sn) => sn.normalize(ws, train),
        None => ws.shallow_clone(),
    }
}

/// A linear layer, spectrally normalised when built with `spectral`.
#[derive(Debug)]
pub struct Dense {
    ws: Tensor,
    bs: Option<Tensor>,
    sn: Option<SpectralNorm>,
}

impl Dense {
    /// xs: [b, in] → [b, out]
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ws = applied_weight(&self.ws, self.sn.as_ref(), train);
        xs.linear(&ws, self.bs.as_ref())
    }

    /// The weight as the layer applies it (normalised when spectral, without a power iteration).
    pub fn effective_weight(&self) -> Tensor {
        tch::no_grad(|| applied_weight(&self.ws, self.sn.as_ref(), false))
    }
}

/// A linear layer `in → out` at `vs`, with a bias when `bias`, spectrally normalised when `spectral`.
pub fn dense(vs: &nn::Path, inputs: i64, outputs: i64, bias: bool, spectral: bool) -> Dense {
    let lin = nn::linear(vs, inputs, outputs, nn::LinearConfig { bias, ..Default::default() });
    let sn = spectral.then(|| SpectralNorm::new(vs, &lin.ws));
    Dense { ws: lin.ws, bs: lin.bs, sn }
}

/// A 2-D convolution, spectrally normalised when built with `spectral`.
#[derive(Debug)]
pub struct Conv {
    ws: Tensor,
    bs: Option<Tensor>,
    stride: i64,
    padding: i64,
    sn: Option<SpectralNorm>,
}

impl Conv {
    /// xs: [b, in, h, w] → [b, out, h', w']
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ws = applied_weight(&self.ws, self.sn.as_ref(), train);
        xs.conv2d(&ws, self.bs.as_ref(), [self.stride], [self.padding], [1], 1)
    }
}

/// A `kernel`×`kernel` convolution `in → out` channels at `vs`.
pub fn conv(vs: &nn::Path, inputs: i64, outputs: i64, kernel: i64, stride: i64, padding: i64, spectral: bool) -> Conv {
    let c = nn::conv2d(vs, inputs, outputs, kernel, nn::ConvConfig { stride, padding, ..Default::default() });
    let sn = spectral.then(|| SpectralNorm::new(vs, &c.ws));
    Conv { ws: c.ws, bs: c.bs, stride, padding, sn }
}

/// The projection discriminator's score (Miyato & Koyama 2018):
/// ψ(φ(x)) + ⟨E c, φ(x)⟩. unconditional: [b], embedded: E c [b, f], features: φ(x) [b, f] → [b]
pub fn projection_score(unconditional: &Tensor, embedded: &Tensor, features: &Tensor) -> Tensor {
    unconditional + (embedded * features).sum_dim_intlist(1, false, Kind::Float)
}

/// ProGAN's minibatch standard deviation layer: the standard deviation of each
/// feature at each position across the batch, averaged to one number and
/// appended as a constant channel. xs: [b, c, h, w] → [b, c + 1, h, w]
pub fn with_minibatch_std(xs: &Tensor) -> Tensor {
    let s = xs.size();
    // + ε inside the root, as ProGAN: a batch of identical images has a finite gradient.
    let spread = (xs.var_dim([0i64].as_slice(), false, false) + 1e-8).sqrt().mean(Kind::Float);
    Tensor::cat(&[xs, &spread.expand([s[0], 1, s[2], s[3]], false)], 1)
}

/// Batch norm without its own affine parameters, followed by a per-condition
/// scale and shift: γ(c) = 1 + Wγ c, β(c) = Wβ c + b. Wγ, Wβ start at zero, so
/// the layer starts as plain batch norm. With a one-hot condition this is one
/// (γ, β) pair per class.
#[derive(Debug)]
pub struct ConditionalBatchNorm {
    bn: nn::BatchNorm,
    gamma: nn::Linear,
    beta: nn::Linear,
}

impl ConditionalBatchNorm {
    pub fn new(vs: &nn::Path, channels: i64, cond_dim: i64) -> Self {
        let zero = nn::LinearConfig { ws_init: nn::Init::Const(0.0), bs_init: Some(nn::Init::Const(0.0)), bias: true };
        ConditionalBatchNorm {
            bn: nn::batch_norm2d(vs / "bn", channels, nn::BatchNormConfig { affine: false, ..Default::default() }),
            gamma: nn::linear(vs / "gamma", cond_dim, channels, zero),
            beta: nn::linear(vs / "beta", cond_dim, channels, zero),
        }
    }

    /// The scale γ(c) and shift β(c) a condition gets. cond: [b, c] → ([b, channels], [b, channels])
    pub fn scale_and_shift(&self, cond: &Tensor) -> (Tensor, Tensor) {
        (cond.apply(&self.gamma) + 1.0, cond.apply(&self.beta))
    }

    /// xs: [b, channels, h, w], cond: [b, c] → [b, channels, h, w]
    pub fn forward_t(&self, xs: &Tensor, cond: &Tensor, train: bool) -> Tensor {
        let s = xs.size();
        let shape = [s[0], s[1], 1, 1];
        let (gamma, beta) = self.scale_and_shift(cond);
        xs.apply_t(&self.bn, train) * gamma.view(shape) + beta.view(shape)
    }
}

/// How a decoder or generator doubles its resolution (7→14→28).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Upsampling {
    /// 3×3 transposed convolutions, stride 2, padding 1, output padding 1 (the study's).
    /// Neighbouring output pixels receive different numbers of kernel taps (1, 2
    /// or 4), which prints a checkerboard (Odena et al. 2016).
    #[default]
    Transposed3,
    /// 4×4 transposed convolutions, stride 2, padding 1: the kernel size is a
    /// multiple of the stride, so every output pixel receives 4 taps; no overlap pattern.
    Transposed4,
    /// Nearest-neighbour ×2 upsampling, then a 3×3 convolution with padding 1
    /// (resize-then-convolve; Odena et al. 2016). Four times the MACs of `transposed3`.
    ResizeConv,
}

/// One ×2 upsampling layer of a decoder or generator.
#[derive(Debug)]
pub enum Upsample {
    Transposed(nn::ConvTranspose2D),
    /// Nearest-neighbour ×2, then this 3×3 convolution (padding 1).
    ResizeConv(nn::Conv2D),
}

impl Upsample {
    pub fn new(path: nn::Path, cin: i64, cout: i64, mode: Upsampling) -> Self {
        match mode {
            Upsampling::Transposed3 => {
                let c = nn::ConvTransposeConfig { stride: 2, padding: 1, output_padding: 1, ..Default::default() };
                Upsample::Transposed(nn::conv_transpose2d(path, cin, cout, 3, c))
            }
            Upsampling::Transposed4 => {
                let c = nn::ConvTransposeConfig { stride: 2, padding: 1, ..Default::default() };
                Upsample::Transposed(nn::conv_transpose2d(path, cin, cout, 4, c))
            }
            Upsampling::ResizeConv => {
                let c = nn::ConvConfig { padding: 1, ..Default::default() };
                Upsample::ResizeConv(nn::conv2d(path, cin, cout, 3, c))
            }
        }
    }

    /// xs: [b, cin, h, w] → [b, cout, 2h, 2w]
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        match self {
            Upsample::Transposed(t) => xs.apply(t),
            Upsample::ResizeConv(conv) => {
                let s = xs.size();
                xs.upsample_nearest2d([s[2] * 2, s[3] * 2], None, None).apply(conv)
            }
        }
    }
}
