//! Embeds an rpath to libtorch so that `condgen` and the tests run without
//! the user exporting `LD_LIBRARY_PATH`.
fn main() {
    // torch-sys (links = "tch") publishes the directory of the libtorch it linked.
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
