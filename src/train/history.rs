//! The per-epoch training record, saved as `history.csv` through polars.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Result;

/// What one epoch measured. CVAE fields are None for a CGAN and vice versa.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// CVAE: mean negative ELBO per image on the train split (BCE + β·KL).
    pub loss: Option<f64>,
    /// CVAE: mean reconstruction BCE per image (summed over pixels).
    pub bce: Option<f64>,
    /// CVAE: mean KL per image.
    pub kl: Option<f64>,
    /// CVAE: negative ELBO per image on the test split.
    pub test_loss: Option<f64>,
    pub test_bce: Option<f64>,
    pub test_kl: Option<f64>,
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
            format!("loss {} (bce {} kl {}) test {}", f(self.loss), f(self.bce), f(self.kl), f(self.test_loss))
        } else {
            format!("D {} G {} D(x) {} D(G(z)) {}", f(self.d_loss), f(self.g_loss), f(self.d_real), f(self.d_fake))
        };
        format!(
            "epoch {}/{epochs}: {losses} | {:.1}s, {:.0} img/s",
            self.epoch, self.seconds, self.images_per_second
        )
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
        .filter(|c| c.len() > 0 && c.null_count() == c.len())
        .map(|c| c.name().to_string())
        .collect();
    Ok(df.drop_many(empty))
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
