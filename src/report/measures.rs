//! The report's measures beyond the metrics (held-out likelihood, CAS, the swap
//! test), kept in each run's folder under `measures/`, so a report drawn again
//! from finished runs recomputes only what changed. `metrics.json` is the
//! metrics' own store; this is the same idea for the costlier extras.
//!
//! Each measure is stored with the key it was computed under (the run's model
//! epoch, its data source, the judge and the measure's own settings); a
//! different key recomputes it and replaces the file.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The folder inside a run folder that holds its stored measures.
pub const MEASURES_DIR: &str = "measures";

/// A stored measure with the key it was computed under.
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    key: serde_json::Value,
    value: T,
}

/// `name`'s value for `run` under `key`: the stored one when its key is `key`,
/// else `compute`'s, stored for the next time. An unreadable file is recomputed.
pub fn cached<T, K>(run: &Path, name: &str, key: &K, compute: impl FnOnce() -> Result<T>) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    K: Serialize,
{
    let path = run.join(MEASURES_DIR).join(format!("{name}.json"));
    let key = serde_json::to_value(key).map_err(|e| Error::InvalidInput(format!("a measure's key: {e}")))?;
    let stored = std::fs::read(&path).ok().and_then(|bytes| serde_json::from_slice::<Stored<T>>(&bytes).ok());
    if let Some(stored) = stored.filter(|s| s.key == key) {
        return Ok(stored.value);
    }
    let value = compute()?;
    let bytes = serde_json::to_vec_pretty(&Stored { key, value: &value })
        .map_err(|e| Error::InvalidInput(format!("storing {name}: {e}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    crate::files::write_atomic(&path, &bytes)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_measure_is_computed_once_per_key() {
        let run = tempfile::tempdir().unwrap();
        let calls = Cell::new(0);
        let compute = |v: f64| {
            calls.set(calls.get() + 1);
            Ok(v)
        };
        assert_eq!(cached(run.path(), "m", &("k", 1), || compute(1.5)).unwrap(), 1.5);
        assert_eq!(cached(run.path(), "m", &("k", 1), || compute(9.0)).unwrap(), 1.5, "stored under its key");
        assert_eq!(calls.get(), 1);
        assert_eq!(cached(run.path(), "m", &("k", 2), || compute(2.5)).unwrap(), 2.5, "another key recomputes");
        assert_eq!(calls.get(), 2);
        std::fs::write(run.path().join(MEASURES_DIR).join("m.json"), b"not json").unwrap();
        assert_eq!(cached(run.path(), "m", &("k", 2), || compute(3.5)).unwrap(), 3.5, "an unreadable file recomputes");
        assert!(cached::<f64, _>(run.path(), "m", &("k", 3), || Err(Error::InvalidInput("x".into()))).is_err());
    }
}
