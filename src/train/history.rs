//! The per-epoch training record, saved as `history.csv` through polars.
//!
//! CVAE columns: `loss`, `bce`, `kl` (train split), `test_loss`, `test_bce`,
//! `test_kl`, `test_active_units` and `test_kl_per_dim` (the held-out split, eval mode).
//! The held-out split is the **validation** split for every run with a
//! `data_protocol` in its config (the test split is not read in training);
//! runs from before the validation split measured these columns on the test split.
//! The `test_` names stay so that every history.csv, old or new, reads the same way.
//! `bce` and `test_bce` are the reconstruction negative log-likelihood under the
//! run's likelihood (the BCE for the studies' Bernoulli; the name stays for every
//! likelihood). `test_kl_per_dim` is one string column: the KL of each latent
//! dimension in nats, in latent order, joined by `;` (e.g. `0.0012;3.4051;…`),
//! so the file keeps one column per quantity whatever the latent size;
//! [`parse_kl_per_dim`] reads it back.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Result;

/// What one epoch measured. CVAE fields are None for a CGAN and vice versa.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// CVAE: mean training objective per image on the train split: BCE + β·KL, with
    /// the step's β under KL warm-up and the free-bits KL when free bits are set
    /// (then it is not the ELBO; `bce` and `kl` are the plain terms).
    pub loss: Option<f64>,
    /// CVAE: mean reconstruction negative log-likelihood per image (summed over
    /// pixels) under the run's likelihood: the BCE for the studies' Bernoulli.
    pub bce: Option<f64>,
    /// CVAE: mean KL per image.
    pub kl: Option<f64>,
    /// CVAE: negative ELBO per image on the held-out split: validation (test in runs
    /// from before the validation split; see the module's notes).
    pub test_loss: Option<f64>,
    pub test_bce: Option<f64>,
    pub test_kl: Option<f64>,
    /// CVAE: active units on the held-out split (Burda et al. 2016; see [`crate::loss::active_units`]).
    #[serde(default)]
    pub test_active_units: Option<usize>,
    /// CVAE: KL per latent dimension on the held-out split, nats per image, [latent]; sums to `test_kl`.
    #[serde(default)]
    pub test_kl_per_dim: Option<Vec<f64>>,
    /// CGAN: mean discriminator (critic) loss.
    pub d_loss: Option<f64>,
    /// CGAN: mean generator loss.
    pub g_loss: Option<f64>,
    /// CGAN: mean D(x) on real images (probability; critic score for WGAN-GP).
    pub d_real: Option<f64>,
    /// CGAN: mean D(G(z)) on generated images.
    pub d_fake: Option<f64>,
    /// Wall time of the epoch's training steps, in seconds.
    pub seconds: f64,
    /// Training images processed per second.
    pub images_per_second: f64,
}

impl EpochRecord {
    /// One line for logs: the epoch's losses, duration and rate.
    pub fn summary(&self, epochs: usize) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let losses = if self.loss.is_some() {
            let active = match (self.test_active_units, &self.test_kl_per_dim) {
                (Some(a), Some(dims)) => format!(", active units {a}/{}", dims.len()),
                _ => String::new(),
            };
            format!(
                "loss {} (reconstruction {} kl {}) validation {}{active}",
                f(self.loss),
                f(self.bce),
                f(self.kl),
                f(self.test_loss)
            )
        } else {
            format!("D {} G {} D(x) {} D(G(z)) {}", f(self.d_loss), f(self.g_loss), f(self.d_real), f(self.d_fake))
        };
        let left = epochs.saturating_sub(self.epoch) as f64 * self.seconds;
        let eta =
            if left > 0.0 { format!(", about {} to go at this pace", human_duration(left)) } else { String::new() };
        format!(
            "epoch {}/{epochs}: {losses} | {:.1}s, {:.0} img/s{eta}",
            self.epoch, self.seconds, self.images_per_second
        )
    }
}

/// Seconds as a reader says them: "45 s", "12 min", "1.5 h".
pub fn human_duration(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 5400.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// The history as a DataFrame, one row per epoch.
pub fn to_frame(history: &[EpochRecord]) -> Result<DataFrame> {
    let col = |f: fn(&EpochRecord) -> Option<f64>| history.iter().map(f).collect::<Vec<_>>();
    let df = df!(
        "epoch" => history.iter().map(|r| r.epoch as u32).collect::<Vec<_>>(),
        "loss" => col(|r| r.loss),
        "bce" => col(|r| r.bce),
        "kl" => col(|r| r.kl),
        "test_loss" => col(|r| r.test_loss),
        "test_bce" => col(|r| r.test_bce),
        "test_kl" => col(|r| r.test_kl),
        "test_active_units" => history.iter().map(|r| r.test_active_units.map(|a| a as u32)).collect::<Vec<_>>(),
        "test_kl_per_dim" => history.iter().map(|r| r.test_kl_per_dim.as_deref().map(format_kl_per_dim)).collect::<Vec<_>>(),
        "d_loss" => col(|r| r.d_loss),
        "g_loss" => col(|r| r.g_loss),
        "d_real" => col(|r| r.d_real),
        "d_fake" => col(|r| r.d_fake),
        "seconds" => history.iter().map(|r| r.seconds).collect::<Vec<_>>(),
        "images_per_second" => history.iter().map(|r| r.images_per_second).collect::<Vec<_>>(),
    )?;
    // Drop the columns that do not apply to this model.
    let empty: Vec<String> = df
        .columns()
        .iter()
        .filter(|c| !c.is_empty() && c.null_count() == c.len())
        .map(|c| c.name().to_string())
        .collect();
    Ok(df.drop_many(empty))
}

/// The `test_kl_per_dim` cell: each dimension's KL with 4 decimals, joined by `;`.
pub fn format_kl_per_dim(kl: &[f64]) -> String {
    kl.iter().map(|v| format!("{v:.4}")).collect::<Vec<_>>().join(";")
}

/// Reads a `test_kl_per_dim` cell back; None when a field is not a number.
pub fn parse_kl_per_dim(cell: &str) -> Option<Vec<f64>> {
    if cell.trim().is_empty() {
        return Some(Vec::new());
    }
    cell.split(';').map(|v| v.trim().parse().ok()).collect()
}

/// The posterior-collapse diagnostics of a CVAE's `epoch` (1-based) in a `history.csv`:
/// (active units, KL per latent dimension); None for a CGAN, a history from before
/// they were recorded, or an epoch the file does not hold.
pub fn collapse_diagnostics(path: &std::path::Path, epoch: usize) -> Option<(usize, Vec<f64>)> {
    let df = read_csv(path).ok()?;
    let n = epoch.checked_sub(1).filter(|&n| n < df.height())?;
    let active = df.column("test_active_units").ok()?.cast(&DataType::Int64).ok()?.i64().ok()?.get(n)?;
    let dims = df.column("test_kl_per_dim").ok()?.cast(&DataType::String).ok()?;
    let cell = dims.str().ok()?.get(n)?.to_string();
    Some((active as usize, parse_kl_per_dim(&cell)?))
}

/// At most `max_rows` epochs of `history`, evenly spaced and counted back from the
/// last, which is always kept (for tables that must stay short).
pub fn thinned(history: &[EpochRecord], max_rows: usize) -> Vec<&EpochRecord> {
    let n = history.len();
    let every = n.div_ceil(max_rows.max(1)).max(1);
    history.iter().enumerate().filter(|(i, _)| (n - 1 - i).is_multiple_of(every)).map(|(_, r)| r).collect()
}

/// The epoch (1-based) with the lowest held-out loss, the first of equals; None for a
/// CGAN's history or an empty one.
pub fn best_validation_epoch(history: &[EpochRecord]) -> Option<usize> {
    history
        .iter()
        .filter_map(|r| r.test_loss.filter(|l| l.is_finite()).map(|l| (r.epoch, l)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
        .map(|(epoch, _)| epoch)
}

/// CSV text of the history.
pub fn to_csv(history: &[EpochRecord]) -> Result<Vec<u8>> {
    let mut df = to_frame(history)?;
    let mut out = Vec::new();
    CsvWriter::new(&mut out).include_header(true).finish(&mut df)?;
    Ok(out)
}

/// Reads a `history.csv` written by [`to_csv`] back as a DataFrame.
pub fn read_csv(path: &std::path::Path) -> Result<DataFrame> {
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))?
        .finish()?;
    Ok(df)
}
