//! Embeds rpaths so that `condgen` and the tests run without the user
//! exporting `LD_LIBRARY_PATH`: to libtorch, and to the toolchain's libstd,
//! which the binaries link dynamically (`-Cprefer-dynamic` in .cargo/config.toml,
//! shared with the notebooks' kernel). profile.dev's `rpath = true` writes a
//! path relative to where rustc linked the binary (`deps/`), one folder off for
//! the copy cargo places beside it, so the absolute library folder goes in too.
use std::process::Command;

fn main() {
    // torch-sys (links = "tch") publishes the directory of the libtorch it linked.
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET").unwrap_or_default();
    let libdir = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", &target])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok());
    if let Some(libdir) = libdir.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libdir}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
