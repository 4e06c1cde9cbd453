//! Serde helpers of the configs: fields left out of a saved config at their
//! default (so older run folders keep their digest), and merging overrides
//! into a config's JSON while refusing unknown keys.

use serde_json::Value;

use crate::{Error, Result};

thread_local! {
    /// Set while [`with_every_field`] runs: no field is omitted then.
    static EVERY_FIELD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// For `#[serde(default, skip_serializing_if = "omitted_at_default")]` on a config
/// field added after run folders existed: at its default the field is left out of
/// the saved config, so the folder digest of every earlier run stays as it was.
/// Overrides still see the field ([`with_every_field`]).
pub(crate) fn omitted_at_default<T: Default + PartialEq>(value: &T) -> bool {
    !EVERY_FIELD.with(std::cell::Cell::get) && *value == T::default()
}

/// [`omitted_at_default`] for a count whose default is 1.
pub(crate) fn omitted_at_one(value: &i64) -> bool {
    !EVERY_FIELD.with(std::cell::Cell::get) && *value == 1
}

/// The default of a count left out at 1 ([`omitted_at_one`]).
pub(crate) fn one() -> i64 {
    1
}

/// Runs `f` (a serialisation) with every field written, the omitted-at-default ones included.
pub(crate) fn with_every_field<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            EVERY_FIELD.with(|flag| flag.set(false));
        }
    }
    EVERY_FIELD.with(|flag| flag.set(true));
    let _reset = Reset;
    f()
}

/// A short stable digest (8 hex digits) of a value's JSON: what names a run
/// folder or a cached judge after its configuration.
pub(crate) fn json_digest<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).expect("configs serialize");
    // FNV-1a: stable across Rust versions, unlike DefaultHasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", h >> 32)
}

/// Merges `src` into `dst`, refusing keys `dst` does not have.
pub(crate) fn merge_checked(dst: &mut Value, src: &Value, path: &str) -> Result<()> {
    let Some(src_obj) = src.as_object() else {
        *dst = src.clone();
        return Ok(());
    };
    let Some(dst_obj) = dst.as_object_mut() else {
        return Err(Error::Config(format!("`{path}` is not a table")));
    };
    for (key, value) in src_obj {
        let full = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        match dst_obj.get_mut(key) {
            // Switching the architecture type replaces the whole table.
            Some(slot) if key == "type" => *slot = value.clone(),
            Some(slot) if value.is_object() && slot.is_object() => merge_checked(slot, value, &full)?,
            Some(slot) => *slot = value.clone(),
            None => {
                let mut valid: Vec<&String> = dst_obj.keys().collect();
                valid.sort();
                let valid: Vec<String> = valid.iter().map(|k| k.to_string()).collect();
                return Err(Error::Config(format!("unknown key `{full}`; valid keys here: {}", valid.join(", "))));
            }
        }
    }
    Ok(())
}
