//! An interactive latent explorer for notebooks: pick a condition, move
//! sliders along the latent's main directions, and see the decoded image at
//! once. Every image is decoded here beforehand, on a grid of slider positions,
//! and embedded as one PNG sprite per condition (a `data:` URI), so the widget
//! needs no kernel: a saved notebook works as static HTML and JavaScript.
//!
//! Where scripts do not run (JupyterLab runs none in an untrusted notebook's
//! outputs), the HTML shows the slider grid of the first condition as one
//! image, with a line saying so; the script (`src/explorer.js`) replaces it.
//!
//! In a notebook cell (evcxr shows an explorer that is a cell's value):
//! `LatentExplorer::for_model(&task.model, &ExplorerConfig::default())?`

use std::path::Path;

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::data::SIDE;
use crate::model::Net;
use crate::plot::Figure;
use crate::sample::{self, LatentSource, Sampler, TrainedModel};
use crate::task::Experiment;
use crate::{Error, Result};

/// The interactive view's script: a function of the explorer's data.
const SCRIPT: &str = include_str!("explorer.js");

/// Prior draws per condition whose principal directions the sliders follow:
/// enough for a stable covariance of a 64-dimensional latent.
const DRAWS: i64 = 2048;

/// Conditions an isotropic source's directions are measured on (evenly spread):
/// 2 decodes per code dimension each, for 512-dimensional latents too.
const RANKING_CONDITIONS: usize = 8;

/// Codes decoded per call, bounding the decoder's activations.
const CHUNK: i64 = 256;

/// Images per condition at most (steps^directions): 8 × 8 × 8.
const MAX_TILES: usize = 512;

/// Widest the static view's image is drawn, in CSS pixels.
const STATIC_WIDTH: usize = 400;

/// The grid the explorer decodes and how it shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplorerConfig {
    /// Positions of each slider, 2..=15; odd keeps the centre on the grid.
    pub steps: usize,
    /// Sliders, each along one latent direction: 1..=3, at most the code's length
    /// (steps^directions images per condition, at most 512).
    pub directions: usize,
    /// Each slider runs from −range to +range standard deviations along its direction (0 < range ≤ 10).
    pub range: f64,
    /// Screen pixels per image pixel in the interactive view, 1..=8.
    pub scale: u32,
    /// The classes shown, each with both styles for K49; None: every class.
    /// K49's 98 conditions take 1.6–2.8 MB of HTML; 12 classes (24 conditions) about 400 KB.
    pub classes: Option<Vec<u8>>,
    /// Grey values kept in the embedded images, 2..=256. 32 looks like 256 at
    /// the default scale and takes half the bytes; 16 takes a third, with visible banding.
    pub grey_levels: u16,
    /// Seeds the draws the directions are found from (and a CGAN's centre).
    pub seed: u64,
}

impl Default for ExplorerConfig {
    /// 7 × 7 positions over ±2 standard deviations, drawn 4× larger, 32 grey levels, every class.
    fn default() -> Self {
        ExplorerConfig { steps: 7, directions: 2, range: 2.0, scale: 4, classes: None, grey_levels: 32, seed: 0 }
    }
}

impl ExplorerConfig {
    /// Refuses a grid the explorer cannot draw or embed.
    pub fn check(&self) -> Result<()> {
        let refuse = |message: String| Err(Error::InvalidInput(format!("latent explorer: {message}")));
        if !(2..=15).contains(&self.steps) {
            return refuse(format!("steps must be 2..=15, not {}", self.steps));
        }
        if !(1..=3).contains(&self.directions) {
            return refuse(format!("directions must be 1..=3, not {}", self.directions));
        }
        // Steps and directions are in range: their power cannot overflow.
        if self.tiles() > MAX_TILES {
            return refuse(format!("{} steps ^ {} directions exceeds {MAX_TILES} images", self.steps, self.directions));
        }
        if !(self.range.is_finite() && self.range > 0.0 && self.range <= 10.0) {
            return refuse(format!("range must be in (0, 10] standard deviations, not {}", self.range));
        }
        if !(1..=8).contains(&self.scale) {
            return refuse(format!("scale must be 1..=8, not {}", self.scale));
        }
        if !(2..=256).contains(&self.grey_levels) {
            return refuse(format!("grey_levels must be 2..=256, not {}", self.grey_levels));
        }
        if self.classes.as_ref().is_some_and(|c| c.is_empty()) {
            return refuse("no classes chosen".into());
        }
        Ok(())
    }

    /// Images per condition: steps^directions.
    fn tiles(&self) -> usize {
        self.steps.pow(self.directions as u32)
    }
}

/// Where a condition's grid lies: code(t) = centre + Σ_k t_k · axes[k] for
/// slider offsets t_k in standard deviations.
struct Directions {
    /// centre: [code_dim]
    centre: Tensor,
    /// One standard deviation along each direction: [directions, code_dim]
    axes: Tensor,
}

/// A built explorer: the decoded grid of every condition shown, ready to render.
pub struct LatentExplorer {
    title: String,
    caption: String,
    labels: Vec<String>,
    /// Per condition, its steps^directions images as tiles, `steps` to a row, slider 1
    /// varying fastest: tile i shows position (i mod steps, i / steps mod steps, …).
    sprites: Vec<Figure>,
    config: ExplorerConfig,
}

impl LatentExplorer {
    /// The explorer of a model's samples as its figures draw them: a CVAE's z from
    /// its fitted prior when one is loaded, else from the prior it was trained with;
    /// a CGAN's noise. Conditions are labelled by the experiment's class names.
    pub fn for_model(model: &TrainedModel, config: &ExplorerConfig) -> Result<LatentExplorer> {
        let source = if model.latent_prior.is_some() { LatentSource::FittedPrior } else { LatentSource::TrainedPrior };
        LatentExplorer::for_sampler(&model.sampler(source)?, &default_labels(model), config)
    }

    /// The explorer of `sampler`'s samples. labels: one per condition of the
    /// model's spec, in [`crate::ConditionSpec::all_conditions`] order (what
    /// [`crate::figures::condition_labels`] gives).
    pub fn for_sampler(sampler: &Sampler, labels: &[String], config: &ExplorerConfig) -> Result<LatentExplorer> {
        config.check()?;
        let model = sampler.model;
        let spec = &model.spec;
        let code_dim = sample::code_dim(&model.built) as usize;
        if config.directions > code_dim {
            return Err(Error::InvalidInput(format!(
                "latent explorer: {} directions in a {code_dim}-dimensional code",
                config.directions
            )));
        }
        let (all_classes, all_styles) = spec.all_conditions();
        if spec.is_conditional() && labels.len() != all_classes.len() {
            return Err(Error::InvalidInput(format!(
                "latent explorer: {} labels for {} conditions",
                labels.len(),
                all_classes.len()
            )));
        }
        if let Some(&c) = config.classes.iter().flatten().find(|&&c| c as usize >= spec.classes()) {
            return Err(Error::InvalidInput(format!("class {c} outside the task's classes 0..{}", spec.classes())));
        }
        // (class, style, label) of each condition shown; an unconditional model has one.
        let shown: Vec<(u8, u8, String)> = if !spec.is_conditional() {
            vec![(0, 0, "no condition (unconditional model)".to_string())]
        } else {
            (0..all_classes.len())
                .filter(|&i| config.classes.as_ref().is_none_or(|keep| keep.contains(&all_classes[i])))
                .map(|i| (all_classes[i], all_styles[i], labels[i].clone()))
                .collect()
        };
        let conditions: Vec<(u8, u8)> = shown.iter().map(|&(c, s, _)| (c, s)).collect();
        tch::manual_seed(config.seed as i64);
        let (directions, how) = tch::no_grad(|| find_directions(sampler, &conditions, config))?;
        let sprites = conditions
            .iter()
            .zip(&directions)
            .map(|(&condition, d)| tch::no_grad(|| decode_grid(sampler, condition, d, config)))
            .collect::<Result<Vec<_>>>()?;
        let title = format!(
            "Latent explorer: {} on {}, epoch {}",
            model.config.architecture.name(),
            model.experiment(),
            model.epoch
        );
        let caption = format!("{}; sliders: {how}.", sampler.caption());
        let labels = shown.into_iter().map(|(_, _, label)| label).collect();
        Ok(LatentExplorer { title, caption, labels, sprites, config: config.clone() })
    }

    /// Conditions shown (at least one).
    pub fn conditions(&self) -> usize {
        self.sprites.len()
    }

    /// The self-contained HTML: the static view, then the script that replaces it.
    pub fn to_html(&self) -> String {
        let cfg = &self.config;
        let (width, height) = (self.sprites[0].width as usize, self.sprites[0].height as usize);
        // Pixel-exact zoom of the sprite, shrunk to fit when it is wide.
        let zoom = (STATIC_WIDTH / width).clamp(1, cfg.scale as usize);
        let data = ScriptData {
            id: String::new(),
            title: &self.title,
            caption: &self.caption,
            labels: &self.labels,
            sprites: self.sprites.iter().map(Figure::data_uri).collect(),
            side: SIDE,
            steps: cfg.steps,
            directions: cfg.directions,
            range: cfg.range,
            scale: cfg.scale,
        };
        // The same content gets the same id, so a re-run notebook's output does not change.
        let id = format!("{:x}", <md5::Md5 as md5::Digest>::digest(serde_json::to_vec(&data).unwrap_or_default()));
        let data = ScriptData { id: id[..16].to_string(), ..data };
        let layout = match cfg.directions {
            1 => "slider 1 across".to_string(),
            2 => "slider 1 across, slider 2 down".to_string(),
            _ => format!("slider 1 across, slider 2 down, slider 3 in blocks of {} rows", cfg.steps),
        };
        let escape = crate::table::escape_html;
        format!(
            "<div data-condgen-explorer=\"{id}\" style=\"font-family:sans-serif\">\n\
             <div style=\"font-weight:bold\">{title}</div>\n\
             <div style=\"font-size:90%\">{caption}</div>\n\
             <img src=\"{sprite}\" width=\"{w}\" height=\"{h}\" alt=\"slider grid\" style=\"image-rendering:pixelated\">\n\
             <div style=\"font-size:90%\">{label}: {layout}, each from −{range} to +{range} sd in {steps} steps.</div>\n\
             <div><i>Interactive in a trusted notebook (File → Trust Notebook); this is the static view.</i></div>\n\
             </div>\n<script>\n{SCRIPT}({json});\n</script>",
            id = data.id,
            title = escape(&self.title),
            caption = escape(&self.caption),
            sprite = data.sprites[0],
            w = width * zoom,
            h = height * zoom,
            label = escape(&self.labels[0]),
            range = cfg.range,
            steps = cfg.steps,
            // `<` escaped so that no label can close the script early.
            json = serde_json::to_string(&data).unwrap_or_default().replace('<', "\\u003c"),
        )
    }

    /// The evcxr rich-output block of [`LatentExplorer::to_html`].
    pub fn evcxr_content(&self) -> String {
        format!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", self.to_html())
    }

    /// Shows the explorer in an evcxr (Jupyter) notebook; evcxr calls this itself
    /// when an explorer is a cell's value.
    pub fn evcxr_display(&self) {
        println!("{}", self.evcxr_content());
    }

    /// Writes [`LatentExplorer::to_html`] to `path` as a page of its own (atomically).
    pub fn save_html(&self, path: &Path) -> Result<()> {
        let page = format!("<!DOCTYPE html>\n<meta charset=\"utf-8\">\n<body>\n{}\n</body>\n", self.to_html());
        crate::files::write_atomic(path, page.as_bytes())
    }
}

/// What the script receives.
#[derive(Serialize)]
struct ScriptData<'a> {
    id: String,
    title: &'a str,
    caption: &'a str,
    labels: &'a [String],
    sprites: Vec<String>,
    side: usize,
    steps: usize,
    directions: usize,
    range: f64,
    scale: u32,
}

/// Each condition's directions, and how they were chosen (for the caption).
///
/// A prior that differs by condition (a fitted prior, a learned p(z | c)):
/// the principal directions of its draws, from their mean, in their standard
/// deviations. An isotropic one (N(0, I), a CGAN's noise), where every unit
/// direction is one standard deviation long and none is likelier than another:
/// the directions along which the image changes most, shared by every
/// condition so that switching the condition keeps the code.
fn find_directions(
    sampler: &Sampler,
    conditions: &[(u8, u8)],
    config: &ExplorerConfig,
) -> Result<(Vec<Directions>, String)> {
    let model = sampler.model;
    let device = model.built.vs.device();
    let (k, dim) = (config.directions as i64, sample::code_dim(&model.built));
    match &model.built.net {
        Net::Cvae(cvae) if sampler.prior().is_some() || model.has_learned_prior() => {
            let directions = conditions
                .iter()
                .map(|&(class, style)| {
                    let eps = Tensor::randn([DRAWS, dim], (Kind::Float, device));
                    let (classes, styles) = (vec![class; DRAWS as usize], vec![style; DRAWS as usize]);
                    let prior = sampler.prior();
                    let z = sample::latent_from_noise(cvae.as_ref(), &model.spec, prior, &classes, &styles, &eps);
                    let z = z.to_kind(Kind::Double);
                    let mean = z.mean_dim(0, false, Kind::Double);
                    let centred = z - &mean;
                    let covariance = centred.transpose(0, 1).matmul(&centred) / (DRAWS - 1) as f64;
                    let (variances, vectors) = top_eigenvectors(&covariance, k)?;
                    let axes = vectors * variances.clamp_min(0.0).sqrt().unsqueeze(1);
                    Ok(Directions { centre: mean.to_kind(Kind::Float), axes: axes.to_kind(Kind::Float) })
                })
                .collect::<Result<_>>()?;
            Ok((directions, format!("the top {k} principal directions of {DRAWS} draws of each condition's z")))
        }
        net => {
            // A CVAE's centre is its prior's mean. A CGAN's is one seeded noise draw:
            // z = 0 lies far from N(0, I)'s draws (their norm is about √dim).
            let (centre, what, from) = match net {
                Net::Cvae(_) => (Tensor::zeros([dim], (Kind::Float, device)), "z", "z = 0"),
                Net::Gan { .. } => (Tensor::randn([dim], (Kind::Float, device)), "the noise", "one noise draw"),
            };
            let axes = most_changing_directions(sampler, conditions, &centre, config)?;
            let how = format!("the {k} directions of {what} along which the image changes most, from {from}");
            Ok((conditions.iter().map(|_| Directions { centre: centre.copy(), axes: axes.copy() }).collect(), how))
        }
    }
}

/// The eigenvectors of the `k` largest eigenvalues of a symmetric matrix, largest
/// first, each with its largest component positive (eigenvectors' signs are
/// arbitrary): (values [k], unit vectors [k, d]). matrix: [d, d] double
fn top_eigenvectors(matrix: &Tensor, k: i64) -> Result<(Tensor, Tensor)> {
    let (values, vectors) = matrix.f_linalg_eigh("L")?;
    let d = values.size()[0];
    // Ascending eigenvalues: the last k, reversed.
    let values = values.narrow(0, d - k, k).flip([0]);
    let vectors = vectors.narrow(1, d - k, k).flip([1]).transpose(0, 1);
    let signs = vectors.gather(1, &vectors.abs().argmax(1, true), false).sign();
    Ok((values, vectors * signs))
}

/// The `config.directions` unit directions of the code along which the
/// model's image changes most around `centre`: the top singular vectors (in
/// code space) of the image differences D_i = image(centre + range·e_i) − image(centre − range·e_i)
/// (a secant Jacobian), stacked over up to [`RANKING_CONDITIONS`] conditions.
/// An axis the decoder ignores (a collapsed latent unit) has D_i ≈ 0 and stays out.
/// centre: [dim] → [directions, dim]
fn most_changing_directions(
    sampler: &Sampler,
    conditions: &[(u8, u8)],
    centre: &Tensor,
    config: &ExplorerConfig,
) -> Result<Tensor> {
    let built = &sampler.model.built;
    let device = built.vs.device();
    let dim = centre.size()[0];
    let step = conditions.len().div_ceil(RANKING_CONDITIONS);
    let moves = Tensor::eye(dim, (Kind::Float, device)) * config.range;
    // D·Dᵀ summed over the conditions, D's rows the D_i: [dim, dim]. Its top
    // eigenvectors are the code directions v that maximise |Σ_i v_i D_i|.
    let mut gram = Tensor::zeros([dim, dim], (Kind::Double, device));
    for &(class, style) in conditions.iter().step_by(step) {
        let mut columns = Vec::new();
        for start in (0..dim).step_by((CHUNK / 2) as usize) {
            let m = (CHUNK / 2).min(dim - start);
            let moved = moves.narrow(0, start, m);
            let codes = Tensor::cat(&[centre + &moved, centre - &moved], 0);
            let n = 2 * m as usize;
            let cond = sampler.model.spec.encode(&vec![class; n], Some(&vec![style; n]), device);
            let images = sample::images_of_codes(built, &codes, &cond).flatten(1, -1).to_kind(Kind::Double);
            columns.push(images.narrow(0, 0, m) - images.narrow(0, m, m));
        }
        let differences = Tensor::cat(&columns, 0); // [dim, pixels]: row i is D_i
        gram += differences.matmul(&differences.transpose(0, 1));
    }
    Ok(top_eigenvectors(&gram, config.directions as i64)?.1.to_kind(Kind::Float))
}

/// One condition's images over the slider grid, as a sprite: tiles of 28 × 28,
/// `steps` to a row, slider 1 varying fastest (tile i at row i / steps, column i mod steps).
fn decode_grid(sampler: &Sampler, (class, style): (u8, u8), d: &Directions, cfg: &ExplorerConfig) -> Result<Figure> {
    let device = d.centre.device();
    let (tiles, k) = (cfg.tiles(), cfg.directions);
    let offset = |p: usize| -cfg.range + 2.0 * cfg.range * p as f64 / (cfg.steps - 1) as f64;
    // offsets: [tiles, k], tile i's slider j at position (i / steps^j) mod steps.
    let offsets: Vec<f32> =
        (0..tiles).flat_map(|i| (0..k).map(move |j| offset(i / cfg.steps.pow(j as u32) % cfg.steps) as f32)).collect();
    let offsets = Tensor::from_slice(&offsets).view([tiles as i64, k as i64]).to_device(device);
    let codes = offsets.matmul(&d.axes) + &d.centre;
    let mut pixels = Vec::with_capacity(tiles * SIDE * SIDE);
    for start in (0..tiles as i64).step_by(CHUNK as usize) {
        let n = CHUNK.min(tiles as i64 - start);
        let cond = sampler.model.spec.encode(&vec![class; n as usize], Some(&vec![style; n as usize]), device);
        let images = sample::images_of_codes(&sampler.model.built, &codes.narrow(0, start, n), &cond);
        pixels.extend(sample::to_u8_images(&images).iter());
    }
    let (columns, rows) = (cfg.steps, tiles / cfg.steps);
    let width = columns * SIDE;
    let mut sprite = vec![0u8; rows * SIDE * width];
    for (i, tile) in pixels.chunks_exact(SIDE * SIDE).enumerate() {
        let (row, column) = (i / columns, i % columns);
        for (y, line) in tile.chunks_exact(SIDE).enumerate() {
            let at = (row * SIDE + y) * width + column * SIDE;
            sprite[at..at + SIDE].copy_from_slice(line);
        }
    }
    quantise(&mut sprite, cfg.grey_levels);
    Figure::from_grey(width as u32, (rows * SIDE) as u32, &sprite)
}

/// Sprite pixels rounded to `levels` evenly spaced grey values (256 keeps them).
fn quantise(pixels: &mut [u8], levels: u16) {
    let top = levels.clamp(2, 256) as u32 - 1;
    for p in pixels {
        let level = (*p as u32 * top + 127) / 255;
        *p = ((level * 255 + top / 2) / top) as u8;
    }
}

/// Every condition's label from the experiment's class names (K49 adds the
/// class number, the romaji and the style), in `all_conditions` order.
fn default_labels(model: &TrainedModel) -> Vec<String> {
    let names = model.experiment().class_names();
    let (classes, styles) = model.spec.all_conditions();
    classes
        .iter()
        .zip(&styles)
        .map(|(&c, &s)| {
            let name = names.get(c as usize).cloned().unwrap_or_else(|| c.to_string());
            match model.experiment() {
                Experiment::K49 => {
                    let romaji = crate::data::k49::ROMAJI.get(c as usize).copied().unwrap_or("?");
                    format!("{c} {name} {romaji}, {}", if s == 1 { "thick" } else { "thin" })
                }
                _ => name,
            }
        })
        .collect()
}
