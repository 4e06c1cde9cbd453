//! `condgen data summary`: what each dataset holds, as polars tables.

use polars::prelude::*;

use super::Dataset;
use crate::Result;

/// One row per split: source, size, pixel mean/std (0..255) and, for K49,
/// the share of thick images.
pub fn overview(ds: &Dataset) -> Result<DataFrame> {
    let splits = [("train", &ds.train), ("validation", &ds.validation), ("test", &ds.test)];
    let stats: Vec<(f64, f64)> = splits.iter().map(|(_, s)| s.pixel_mean_std()).collect();
    let thick: Vec<Option<f64>> = splits
        .iter()
        .map(|(_, s)| s.styles.as_ref().map(|st| st.iter().map(|&v| v as f64).sum::<f64>() / st.len().max(1) as f64))
        .collect();
    let df = df!(
        "dataset" => splits.iter().map(|_| ds.kind.title()).collect::<Vec<_>>(),
        "source" => splits.iter().map(|_| ds.source.short()).collect::<Vec<_>>(),
        "split" => splits.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "images" => splits.iter().map(|(_, s)| s.len() as u64).collect::<Vec<_>>(),
        "classes" => splits.iter().map(|(_, s)| s.class_counts(ds.num_classes()).iter().filter(|&&c| c > 0).count() as u32).collect::<Vec<_>>(),
        "pixel_mean" => stats.iter().map(|s| round2(s.0)).collect::<Vec<_>>(),
        "pixel_std" => stats.iter().map(|s| round2(s.1)).collect::<Vec<_>>(),
        "thick_share" => thick,
    )?;
    Ok(df)
}

/// One row per class: train, validation and test counts (and thick counts, style median for K49).
pub fn class_table(ds: &Dataset) -> Result<DataFrame> {
    let k = ds.num_classes();
    let counts = |split: &super::Split| split.class_counts(k).into_iter().map(|c| c as u64).collect::<Vec<_>>();
    let mut df = df!(
        "class" => (0..k as u32).collect::<Vec<_>>(),
        "name" => ds.class_names.clone(),
        "train" => counts(&ds.train),
        "validation" => counts(&ds.validation),
        "test" => counts(&ds.test),
    )?;
    if let (Some(medians), Some(styles)) = (&ds.style_medians, &ds.train.styles) {
        let mut thick = vec![0u64; k];
        for (&l, &s) in ds.train.labels.iter().zip(styles) {
            thick[l as usize] += s as u64;
        }
        df.with_column(Column::new("train_thick".into(), thick))?;
        df.with_column(Column::new("style_median".into(), medians.clone()))?;
    }
    Ok(df)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Prints both tables with the data source spelled out in full, and the validation protocol.
pub fn print(ds: &Dataset) -> Result<()> {
    println!("== {} — source: {}", ds.kind.title(), ds.source);
    let unit = match ds.kind {
        super::DatasetKind::SignMnist => ", by whole groups of near-duplicate copies",
        super::DatasetKind::K49 => "",
    };
    println!(
        "validation: {} images, a stratified {:.0} % of each class of the files' train split{unit} (seed {:#x}), \
         never trained on; train: the other {}",
        ds.validation.len(),
        100.0 * super::VALIDATION_FRACTION,
        super::VALIDATION_SEED,
        ds.train.len()
    );
    println!("{}", overview(ds)?);
    let rows = ds.num_classes().max(10);
    // Show every class: polars cuts long tables by default.
    std::env::set_var("POLARS_FMT_MAX_ROWS", rows.to_string());
    println!("{}", class_table(ds)?);
    Ok(())
}
