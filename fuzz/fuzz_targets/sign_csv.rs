#![no_main]
//! Arbitrary bytes as a Sign Language MNIST CSV: data or a clean error, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    condgen::data::fuzz::sign_csv(data);
});
