//! Embedded stand-ins: deterministic synthetic datasets with the shapes, class
//! counts and split sizes of the real ones, used (loudly) when the files are absent.
//!
//! They are not toys: every class has its own stroke prototype, each image is a
//! jittered rendering of it (shift, rotation, scale, stroke thickness), so a
//! classifier must learn real class structure, the prototypes are asymmetric (the
//! rotation task is meaningful) and K49's thick/thin style varies for real.
//! Each image is generated from its own seed, so any prefix is cheap and the
//! output depends only on the seed (same seed, same bytes).

use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{k49, sign, DataSource, Dataset, DatasetKind, Split, PIXELS, SIDE};

pub const DEFAULT_SEED: u64 = 2024;

/// Sign Language MNIST per-letter counts (A..Y without J), train and test.
pub const SIGN_TRAIN_COUNTS: [usize; 24] = [
    1126, 1010, 1144, 1196, 957, 1204, 1090, 1013, 1162, 1114, 1241, 1055, 1151, 1196, 1088, 1279, 1294, 1199, 1186,
    1161, 1082, 1225, 1164, 1118,
];
pub const SIGN_TEST_COUNTS: [usize; 24] = [
    331, 432, 310, 245, 498, 247, 348, 436, 288, 331, 209, 394, 291, 246, 347, 164, 144, 246, 248, 266, 346, 206, 267,
    332,
];

/// Kuzushiji-49 per-class test counts (the real ones, sum 38,547).
pub const K49_TEST_COUNTS: [usize; 49] = [
    1000, 1000, 1000, 126, 1000, 1000, 1000, 1000, 767, 1000, 1000, 1000, 1000, 678, 629, 1000, 418, 1000, 1000, 1000,
    1000, 1000, 336, 399, 1000, 1000, 836, 1000, 1000, 324, 1000, 498, 280, 552, 1000, 1000, 260, 1000, 1000, 1000,
    1000, 1000, 348, 390, 68, 64, 1000, 1000, 574,
];
/// Size of the real K49 train split.
pub const K49_TRAIN_SIZE: usize = 232_365;

/// K49 train counts: the test counts scaled to 232,365 images (K49's imbalance).
pub fn k49_train_counts() -> Vec<usize> {
    let test_total: usize = K49_TEST_COUNTS.iter().sum();
    let mut counts: Vec<usize> =
        K49_TEST_COUNTS.iter().map(|&c| ((c * K49_TRAIN_SIZE) as f64 / test_total as f64).round() as usize).collect();
    // Rounding loses a few images; give them to the first classes.
    let mut missing = K49_TRAIN_SIZE - counts.iter().sum::<usize>();
    for c in counts.iter_mut() {
        if missing == 0 {
            break;
        }
        *c += 1;
        missing -= 1;
    }
    counts
}

/// The Sign Language MNIST stand-in: 24 letter classes, 27,455 + 7,172 images.
pub fn sign_mnist(seed: u64) -> Dataset {
    let prototypes: Vec<HandPrototype> = (0..24).map(|c| HandPrototype::new(seed, c)).collect();
    let render = |rng: &mut ChaCha8Rng, class: u8, out: &mut [u8]| prototypes[class as usize].render(rng, out);
    Dataset::from_files(
        DatasetKind::SignMnist,
        DataSource::Embedded { seed, looked_in: std::path::PathBuf::from(super::SIGN_DIR) },
        sign::LETTERS.iter().map(|s| s.to_string()).collect(),
        generate_split(seed, 0, &SIGN_TRAIN_COUNTS, &render),
        generate_split(seed, 1, &SIGN_TEST_COUNTS, &render),
    )
}

/// The Kuzushiji-49 stand-in: 49 classes with K49's imbalance, 232,365 + 38,547 images.
pub fn k49(seed: u64) -> Dataset {
    let prototypes: Vec<GlyphPrototype> = (0..49).map(|c| GlyphPrototype::new(seed, c)).collect();
    let render = |rng: &mut ChaCha8Rng, class: u8, out: &mut [u8]| prototypes[class as usize].render(rng, out);
    let train = generate_split(seed, 2, &k49_train_counts(), &render);
    let test = generate_split(seed, 3, &K49_TEST_COUNTS, &render);
    let mut ds = Dataset::from_files(
        DatasetKind::K49,
        DataSource::Embedded { seed, looked_in: std::path::PathBuf::from(super::K49_DIR) },
        k49::CHARACTERS.iter().map(|s| s.to_string()).collect(),
        train,
        test,
    );
    k49::assign_dataset_styles(&mut ds);
    ds
}

/// Labels with exactly `counts` per class in seeded random order, then one image
/// per label, each from its own RNG; rendered on all cores.
fn generate_split<F>(seed: u64, split_id: u64, counts: &[usize], render: &F) -> Split
where
    F: Fn(&mut ChaCha8Rng, u8, &mut [u8]) + Sync,
{
    let mut labels: Vec<u8> = counts.iter().enumerate().flat_map(|(c, &n)| std::iter::repeat_n(c as u8, n)).collect();
    let mut order_rng = ChaCha8Rng::seed_from_u64(mix(seed, split_id, u64::MAX));
    shuffle(&mut labels, &mut order_rng);
    let n = labels.len();
    let mut pixels = vec![0u8; n * PIXELS];
    let threads = std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1).min(8);
    let per_thread = n.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (chunk_idx, chunk) in pixels.chunks_mut(per_thread * PIXELS).enumerate() {
            let labels = &labels;
            scope.spawn(move || {
                for (k, out) in chunk.chunks_exact_mut(PIXELS).enumerate() {
                    let i = chunk_idx * per_thread + k;
                    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, split_id, i as u64));
                    render(&mut rng, labels[i], out);
                }
            });
        }
    });
    Split { images: Array3::from_shape_vec((n, SIDE, SIDE), pixels).expect("n·784 pixels"), labels, styles: None }
}

fn shuffle<T>(v: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.gen_range(0..=i);
        v.swap(i, j);
    }
}

/// A 64-bit mix (splitmix64 finaliser) of seed, split and index.
fn mix(seed: u64, split: u64, index: u64) -> u64 {
    let mut z = seed ^ split.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

type Point = (f32, f32);

/// A random affine jitter around the image centre: rotation, scale, shift.
struct Jitter {
    cos: f32,
    sin: f32,
    scale: f32,
    dx: f32,
    dy: f32,
}

impl Jitter {
    fn new(rng: &mut ChaCha8Rng, max_angle: f32, scale: (f32, f32), max_shift: f32) -> Self {
        let angle = rng.gen_range(-max_angle..=max_angle);
        Jitter {
            cos: angle.cos(),
            sin: angle.sin(),
            scale: rng.gen_range(scale.0..=scale.1),
            dx: rng.gen_range(-max_shift..=max_shift),
            dy: rng.gen_range(-max_shift..=max_shift),
        }
    }

    fn apply(&self, (x, y): Point) -> Point {
        let (cx, cy) = (x - 13.5, y - 13.5);
        let rx = (cx * self.cos - cy * self.sin) * self.scale;
        let ry = (cx * self.sin + cy * self.cos) * self.scale;
        (rx + 13.5 + self.dx, ry + 13.5 + self.dy)
    }
}

/// Point on a cubic Bézier curve at t in [0, 1].
fn bezier(p: &[Point; 4], t: f32) -> Point {
    let u = 1.0 - t;
    let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
    (a * p[0].0 + b * p[1].0 + c * p[2].0 + d * p[3].0, a * p[0].1 + b * p[1].1 + c * p[2].1 + d * p[3].1)
}

/// Draws an anti-aliased thick polyline into `canvas` ([784] coverage in 0..1).
fn draw_polyline(canvas: &mut [f32], points: &[Point], radius: f32) {
    for seg in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (seg[0], seg[1]);
        let reach = radius + 1.0;
        let (lo_x, hi_x) =
            ((x0.min(x1) - reach).floor().max(0.0) as usize, (x0.max(x1) + reach).ceil().min(27.0) as usize);
        let (lo_y, hi_y) =
            ((y0.min(y1) - reach).floor().max(0.0) as usize, (y0.max(y1) + reach).ceil().min(27.0) as usize);
        if lo_x > hi_x || lo_y > hi_y {
            continue;
        }
        let (vx, vy) = (x1 - x0, y1 - y0);
        let len2 = (vx * vx + vy * vy).max(1e-6);
        for y in lo_y..=hi_y {
            for x in lo_x..=hi_x {
                let (px, py) = (x as f32 - x0, y as f32 - y0);
                let t = ((px * vx + py * vy) / len2).clamp(0.0, 1.0);
                let (dx, dy) = (px - t * vx, py - t * vy);
                let d = (dx * dx + dy * dy).sqrt();
                let coverage = (radius + 0.5 - d).clamp(0.0, 1.0);
                let cell = &mut canvas[y * SIDE + x];
                *cell = cell.max(coverage);
            }
        }
    }
}

/// A K49-like glyph class: 2–4 Bézier strokes.
struct GlyphPrototype {
    strokes: Vec<[Point; 4]>,
}

impl GlyphPrototype {
    fn new(seed: u64, class: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, 0x4b49, class));
        let n = rng.gen_range(2..=4);
        let strokes = (0..n)
            .map(|_| {
                let mut p = [(0.0, 0.0); 4];
                for q in p.iter_mut() {
                    *q = (rng.gen_range(5.0..23.0), rng.gen_range(5.0..23.0));
                }
                p
            })
            .collect();
        GlyphPrototype { strokes }
    }

    /// White ink on black, stroke radius 0.6–2.0 px (the thick/thin variation).
    fn render(&self, rng: &mut ChaCha8Rng, out: &mut [u8]) {
        let jitter = Jitter::new(rng, 0.2, (0.85, 1.1), 2.0);
        let radius = rng.gen_range(0.6f32..2.0);
        let ink = rng.gen_range(200.0f32..255.0);
        let mut canvas = [0f32; PIXELS];
        for stroke in &self.strokes {
            let mut ctrl = *stroke;
            for q in ctrl.iter_mut() {
                *q = jitter.apply((q.0 + rng.gen_range(-1.2..1.2), q.1 + rng.gen_range(-1.2..1.2)));
            }
            let points: Vec<Point> = (0..=12).map(|k| bezier(&ctrl, k as f32 / 12.0)).collect();
            draw_polyline(&mut canvas, &points, radius);
        }
        for (o, c) in out.iter_mut().zip(canvas.iter()) {
            *o = (c * ink).round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// A Sign-MNIST-like hand class: a palm ellipse and 1–4 fingers at class-specific
/// angles, lit differently from a graded background.
struct HandPrototype {
    palm: Point,
    palm_radius: Point,
    fingers: Vec<(f32, f32)>, // (angle in radians, length in px)
    thumb: Option<(f32, f32)>,
}

impl HandPrototype {
    fn new(seed: u64, class: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, 0x5167, class));
        let palm = (rng.gen_range(11.0..17.0), rng.gen_range(15.0..20.0));
        let palm_radius = (rng.gen_range(4.5..7.0), rng.gen_range(4.0..6.0));
        let n = rng.gen_range(1..=4);
        let fingers = (0..n).map(|_| (rng.gen_range(-2.6f32..-0.5), rng.gen_range(6.0..12.0))).collect();
        let thumb = rng.gen_bool(0.6).then(|| (rng.gen_range(-0.3f32..0.9), rng.gen_range(4.0..8.0)));
        HandPrototype { palm, palm_radius, fingers, thumb }
    }

    fn render(&self, rng: &mut ChaCha8Rng, out: &mut [u8]) {
        let jitter = Jitter::new(rng, 0.15, (0.9, 1.1), 2.0);
        let mut canvas = [0f32; PIXELS];
        // Palm: fill the ellipse by sampling concentric rings.
        let (rx, ry) = self.palm_radius;
        for ring in 0..5 {
            let f = 1.0 - ring as f32 / 5.0;
            let points: Vec<Point> = (0..=16)
                .map(|k| {
                    let a = k as f32 / 16.0 * std::f32::consts::TAU;
                    jitter.apply((self.palm.0 + rx * f * a.cos(), self.palm.1 + ry * f * a.sin()))
                })
                .collect();
            draw_polyline(&mut canvas, &points, 1.2);
        }
        let finger_radius = rng.gen_range(1.4f32..2.4);
        for &(angle, length) in self.fingers.iter().chain(self.thumb.iter()) {
            let angle = angle + rng.gen_range(-0.12..0.12);
            let length = length * rng.gen_range(0.9..1.1);
            let base = (self.palm.0 + rx * 0.7 * angle.cos(), self.palm.1 + ry * 0.7 * angle.sin());
            let tip = (base.0 + length * angle.cos(), base.1 + length * angle.sin());
            draw_polyline(&mut canvas, &[jitter.apply(base), jitter.apply(tip)], finger_radius);
        }
        // Lighting: a graded background and a hand that is lighter than it.
        let background = rng.gen_range(60.0f32..170.0);
        let gradient = (rng.gen_range(-2.0f32..2.0), rng.gen_range(-2.0f32..2.0));
        let hand = (background + rng.gen_range(50.0f32..110.0)).min(250.0);
        for (i, o) in out.iter_mut().enumerate() {
            let (x, y) = ((i % SIDE) as f32 - 13.5, (i / SIDE) as f32 - 13.5);
            let bg = background + gradient.0 * x + gradient.1 * y;
            let shade = -0.8 * y; // light from above
            let v = bg + canvas[i] * (hand + shade - bg) + rng.gen_range(-6.0..6.0);
            *o = v.round().clamp(0.0, 255.0) as u8;
        }
    }
}
