//! Plot tests: every figure decodes as a PNG of the size it claims, labels
//! take room, marks are where the layout says, bad input is an error.
//!
//! Set CONDGEN_PLOT_OUT=DIR to keep the figures for looking at.

use condgen::ndarray::Array3;
use condgen::plot::{
    bar_chart, image_grid, line_chart, line_chart_equal_axes, side_by_side, Figure, GridLayout, GridSpec, Mark, Series,
    CHART_HEIGHT, CHART_WIDTH,
};
use condgen::Error;

/// images: [n, 28, 28] uint8, each a bright square whose position depends on i.
fn images(n: usize) -> Array3<u8> {
    Array3::from_shape_fn((n, 28, 28), |(i, y, x)| {
        let (cy, cx) = (6 + (i * 5) % 14, 6 + (i * 3) % 14);
        if (y as isize - cy as isize).abs() < 5 && (x as isize - cx as isize).abs() < 5 {
            255
        } else {
            (i * 10 % 60) as u8
        }
    })
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Decodes the PNG and checks it is the size the figure claims.
fn decode(fig: &Figure) -> condgen::image::RgbImage {
    assert!(!fig.png.is_empty());
    let img = condgen::image::load_from_memory_with_format(&fig.png, condgen::image::ImageFormat::Png)
        .expect("a valid PNG")
        .to_rgb8();
    assert_eq!((img.width(), img.height()), (fig.width, fig.height));
    img
}

fn keep(fig: &Figure, name: &str) {
    if let Ok(dir) = std::env::var("CONDGEN_PLOT_OUT") {
        fig.save(&std::path::Path::new(&dir).join(name)).unwrap();
    }
}

fn is_red(p: &condgen::image::Rgb<u8>) -> bool {
    p.0[0] > 200 && p.0[1] < 60 && p.0[2] < 60
}

// ---------- image grid ----------

#[test]
fn grid_is_a_png_of_its_layout_size() {
    let imgs = images(5);
    let spec = GridSpec::new("", 2, 3);
    let fig = image_grid(imgs.view(), &spec).unwrap();
    let img = decode(&fig);
    let layout = GridLayout::new(&spec, 28, 28).unwrap();
    assert_eq!((fig.width, fig.height), (layout.width, layout.height));
    // 3 columns of 84 px images fit, and the grid is not much more.
    assert!(fig.width >= 3 * 84 && fig.width < 3 * 84 + 60, "{}", fig.width);
    // The first image's corner pixel is its (dark) background, not white.
    let (x, y, w, h) = layout.cell(0);
    assert_eq!((w, h), (84, 84));
    assert_eq!(img.get_pixel(x, y).0, [0, 0, 0]);
    // The sixth cell has no image and stays white.
    let (x, y, _, _) = layout.cell(5);
    assert_eq!(img.get_pixel(x + 10, y + 10).0, [255, 255, 255]);
}

#[test]
fn labelled_grid_is_wider_and_taller() {
    let imgs = images(6);
    let plain = image_grid(imgs.view(), &GridSpec::new("", 2, 3)).unwrap();
    let rows = strings(&["consonant", "vowel"]);
    let cols = strings(&["A", "B", "C"]);
    let cells = strings(&["1", "2", "3", "4", "5", "6"]);
    let spec = GridSpec {
        title: "Samples per condition",
        row_labels: &rows,
        col_labels: &cols,
        cell_labels: &cells,
        ..GridSpec::new("", 2, 3)
    };
    let labelled = image_grid(imgs.view(), &spec).unwrap();
    decode(&labelled);
    keep(&labelled, "grid-labelled.png");
    assert!(labelled.width > plain.width, "{} vs {}", labelled.width, plain.width);
    assert!(labelled.height > plain.height);
}

#[test]
fn good_mark_frames_the_first_cell_in_red() {
    let imgs = images(4);
    let marks = [Mark::Good, Mark::Bad, Mark::None, Mark::None];
    let cells = strings(&["good", "bad", "plain", "plain"]);
    let spec = GridSpec { title: "Marked", marks: &marks, cell_labels: &cells, ..GridSpec::new("", 2, 2) };
    let fig = image_grid(imgs.view(), &spec).unwrap();
    let img = decode(&fig);
    keep(&fig, "grid-marked.png");
    let layout = GridLayout::new(&spec, 28, 28).unwrap();

    let (x, y, w, h) = layout.cell(0);
    let around = [(x - 1, y - 1), (x - 2, y + h / 2), (x + w, y + h / 2), (x + w / 2, y - 2), (x + w / 2, y + h + 1)];
    for (px, py) in around {
        assert!(is_red(img.get_pixel(px, py)), "({px},{py}) is {:?}", img.get_pixel(px, py));
    }
    // The frame is outside the image: the image's own corner is untouched.
    assert_eq!(img.get_pixel(x, y).0, [0, 0, 0]);

    // Bad is yellow, unmarked is white around.
    let (x, y, _, _) = layout.cell(1);
    let p = img.get_pixel(x - 1, y + 5).0;
    assert!(p[0] > 200 && p[1] > 150 && p[2] < 60, "{p:?}");
    let (x, y, _, _) = layout.cell(2);
    assert_eq!(img.get_pixel(x - 1, y + 5).0, [255, 255, 255]);
}

#[test]
fn grid_rejects_bad_specs_without_panicking() {
    let imgs = images(4);
    let two = strings(&["a", "b"]);
    let three = strings(&["a", "b", "c"]);
    let marks = [Mark::Good; 3];
    let base = GridSpec::new("bad", 2, 2);
    let cases = [
        GridSpec { row_labels: &three, ..base },
        GridSpec { col_labels: &three, ..base },
        GridSpec { cell_labels: &two, ..base },
        GridSpec { marks: &marks, ..base },
    ];
    for spec in &cases {
        let err = image_grid(imgs.view(), spec).unwrap_err();
        assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    }
    // More images than cells, zero scale, zero rows, absurd size.
    assert!(image_grid(images(5).view(), &base).is_err());
    assert!(image_grid(imgs.view(), &GridSpec { scale: 0, ..base }).is_err());
    assert!(image_grid(imgs.view(), &GridSpec { rows: 0, ..base }).is_err());
    assert!(image_grid(imgs.view(), &GridSpec { scale: 100_000, ..base }).is_err());
    assert!(image_grid(imgs.view(), &GridSpec { rows: 100_000, cols: 100_000, ..base }).is_err());
    assert!(image_grid(imgs.view(), &GridSpec { rows: usize::MAX, cols: usize::MAX, ..base }).is_err());
    // Zero images is an empty (but valid) grid.
    let empty = image_grid(images(0).view(), &base).unwrap();
    decode(&empty);
}

#[test]
fn long_labels_widen_columns_instead_of_clipping() {
    let imgs = images(4);
    let cols = strings(&["a rather long column label", "B"]);
    let cells = strings(&["caption wider than 28 px", "b", "c", "d"]);
    let spec = GridSpec {
        title: "A title much wider than a two-by-two grid at scale one",
        col_labels: &cols,
        cell_labels: &cells,
        scale: 1,
        ..GridSpec::new("", 2, 2)
    };
    let fig = image_grid(imgs.view(), &spec).unwrap();
    decode(&fig);
    keep(&fig, "grid-long-labels.png");
    let layout = GridLayout::new(&spec, 28, 28).unwrap();
    let (x0, _, w, _) = layout.cell(0);
    let (x1, _, _, _) = layout.cell(1);
    assert_eq!(w, 28);
    assert!(x1 - x0 > 100, "columns widened: pitch {}", x1 - x0);
}

// ---------- charts ----------

#[test]
fn line_chart_is_800_by_480() {
    let train: Vec<(f64, f64)> = (1..=20).map(|e| (e as f64, 200.0 / (e as f64) + 100.0)).collect();
    let test: Vec<(f64, f64)> = (1..=20).map(|e| (e as f64, 210.0 / (e as f64) + 105.0)).collect();
    let fig = line_chart(
        "CVAE loss",
        "epoch",
        "loss (ELBO, nats)",
        &[Series::new("train", train), Series::new("test", test)],
    )
    .unwrap();
    let img = decode(&fig);
    keep(&fig, "line-chart.png");
    assert_eq!((fig.width, fig.height), (CHART_WIDTH, CHART_HEIGHT));
    assert_eq!((fig.width, fig.height), (800, 480));
    // Something was drawn: plenty of non-white pixels.
    let ink = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(ink > 2_000, "{ink}");
}

/// With equal axes a unit circle is as wide as it is tall on the canvas, though the
/// data span eight units across and two up.
#[test]
fn equal_axes_draw_a_circle_round() {
    let circle: Vec<(f64, f64)> =
        (0..=120).map(|i| i as f64 / 120.0 * std::f64::consts::TAU).map(|a| (a.cos(), a.sin())).collect();
    let ends = Series::markers("", vec![(-4.0, 0.0), (4.0, 0.0)]);
    let fig = line_chart_equal_axes("circle", "x", "y", &[Series::new("", circle), ends]).unwrap();
    let img = decode(&fig);
    keep(&fig, "equal-axes.png");
    // The circle is the first series: tab10 blue.
    let blue: Vec<(u32, u32)> =
        img.enumerate_pixels().filter(|(_, _, p)| p.0 == [31, 119, 180]).map(|(x, y, _)| (x, y)).collect();
    let extent = |pick: fn(&(u32, u32)) -> u32| {
        blue.iter().map(pick).max().unwrap() as i64 - blue.iter().map(pick).min().unwrap() as i64
    };
    let (width, height) = (extent(|p| p.0), extent(|p| p.1));
    assert!(width > 40 && (width - height).abs() <= 3, "the circle is {width} × {height} px");
}

#[test]
fn line_chart_handles_one_point_nan_and_empty() {
    let one = line_chart("one", "x", "y", &[Series::new("only", vec![(3.0, 7.0)])]).unwrap();
    decode(&one);
    let nan = vec![(1.0, 1.0), (2.0, f64::NAN), (3.0, 2.0), (4.0, f64::INFINITY), (5.0, 0.5)];
    let broken = line_chart("nan", "x", "y", &[Series::new("d", nan)]).unwrap();
    decode(&broken);
    keep(&broken, "line-chart-nan.png");
    assert!(line_chart("empty", "x", "y", &[]).is_err());
    assert!(line_chart("empty", "x", "y", &[Series::new("e", vec![])]).is_err());
    assert!(line_chart("all nan", "x", "y", &[Series::new("n", vec![(f64::NAN, 1.0)])]).is_err());
    // Unnamed series draw without a legend.
    decode(&line_chart("", "", "", &[Series::new("", vec![(0.0, 0.0), (1.0, 1.0)])]).unwrap());
}

#[test]
fn bar_chart_is_800_by_480() {
    let labels = strings(&["consonant/vowel", "letter", "rotation"]);
    let fig = bar_chart("Classifier accuracy", "accuracy", &labels, &[0.97, 0.91, 0.99], Some((0.95, "95%"))).unwrap();
    decode(&fig);
    keep(&fig, "bar-chart.png");
    assert_eq!((fig.width, fig.height), (800, 480));

    // 49 classes: labels turn on their side, nothing fails.
    let labels: Vec<String> = (0..49).map(|i| format!("class {i}")).collect();
    let values: Vec<f64> = (0..49).map(|i| (i as f64 * 0.37).sin() * 0.2 + 0.7).collect();
    let many = bar_chart("Per-class accuracy", "accuracy", &labels, &values, None).unwrap();
    decode(&many);
    keep(&many, "bar-chart-49.png");

    // Negative values and all zeros work.
    let neg = bar_chart("neg", "d", &strings(&["a", "b"]), &[-1.0, 2.0], Some((0.5, "half"))).unwrap();
    decode(&neg);
    keep(&neg, "bar-chart-neg.png");
    decode(&bar_chart("zeros", "d", &strings(&["a", "b"]), &[0.0, 0.0], None).unwrap());
}

#[test]
fn bar_chart_rejects_bad_input() {
    let err = bar_chart("t", "y", &strings(&["a", "b"]), &[1.0], None).unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    assert!(bar_chart("t", "y", &[], &[], None).is_err());
    assert!(bar_chart("t", "y", &strings(&["a"]), &[f64::NAN], None).is_err());
    assert!(bar_chart("t", "y", &strings(&["a"]), &[1.0], Some((f64::INFINITY, "r"))).is_err());
}

// ---------- composition ----------

#[test]
fn side_by_side_fits_all_figures() {
    let imgs = images(4);
    let a = image_grid(imgs.view(), &GridSpec::new("CVAE", 2, 2)).unwrap();
    let b = image_grid(imgs.view(), &GridSpec::new("CGAN", 1, 4)).unwrap();
    let fig = side_by_side(&[("CVAE", &a), ("CGAN", &b)]).unwrap();
    decode(&fig);
    keep(&fig, "side-by-side.png");
    assert!(fig.width >= a.width + b.width);
    assert!(fig.height > a.height.max(b.height), "captions take room");
    // Without captions no room is taken for them.
    let plain = side_by_side(&[("", &a), ("", &b)]).unwrap();
    assert!(plain.height < fig.height);
    assert!(side_by_side(&[]).is_err());
    let bogus = Figure { png: vec![1, 2, 3], width: 1, height: 1 };
    assert!(side_by_side(&[("x", &bogus)]).is_err());
}

// ---------- saving and notebooks ----------

#[test]
fn save_writes_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let fig = line_chart("s", "x", "y", &[Series::new("a", vec![(0.0, 1.0), (1.0, 0.0)])]).unwrap();
    let path = dir.path().join("figures").join("loss.png");
    fig.save(&path).unwrap();
    let read = Figure::from_png(std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(read, fig);
    // Overwriting replaces the file whole; no temporary file is left behind.
    let small = image_grid(images(1).view(), &GridSpec::new("", 1, 1)).unwrap();
    small.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), small.png);
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("loss.png")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o444, 0o444, "readable by all: {mode:o}");
    }
}

#[test]
fn evcxr_content_wraps_base64_png() {
    let fig = image_grid(images(1).view(), &GridSpec::new("", 1, 1)).unwrap();
    let text = fig.evcxr_content();
    assert!(text.starts_with("EVCXR_BEGIN_CONTENT image/png\n"));
    assert!(text.ends_with("\nEVCXR_END_CONTENT"));
    let b64 = text.lines().nth(1).unwrap();
    assert!(b64.starts_with("iVBORw0KGgo"), "PNG magic in base64");
}
