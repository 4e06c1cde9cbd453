#![no_main]
//! Arbitrary bytes as a K49 npz (images and labels): data or a clean error,
//! never a panic or an allocation sized by a hostile header.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    condgen::data::fuzz::k49_npz(data);
});
