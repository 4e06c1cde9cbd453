//! The project builds exactly as the notebooks' kernel does, so both share one set of
//! compiled dependencies (issue 19). Change either side and this fails, instead of every
//! notebook silently recompiling the whole dependency tree for ≈ 20 minutes.

use std::path::Path;

/// The `[profile.dev]` that evcxr writes for its crate, copied from evcxr 0.22.0
/// (`module.rs`, `get_cargo_toml_contents`; opt-level is evcxr's default `:opt 2`).
const EVCXR_VERSION: &str = "0.22.0";
const EVCXR_PROFILE_DEV: &str = r#"
opt-level = 2
debug = false
strip = "debuginfo"
rpath = true
lto = false
debug-assertions = true
codegen-units = 16
panic = 'unwind'
incremental = true
overflow-checks = true
"#;

fn read_toml(name: &str) -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn dev_profile_is_evcxrs() {
    let manifest = read_toml("Cargo.toml");
    let profile = &manifest["profile"];
    let expected: toml::Table = EVCXR_PROFILE_DEV.parse().unwrap();
    // Equality also rules out a per-package override, which would change hashes on our side only.
    assert_eq!(profile["dev"].as_table(), Some(&expected), "Cargo.toml [profile.dev] differs from evcxr's");
}

#[test]
fn target_and_rustflags_are_evcxrs() {
    let config = read_toml(".cargo/config.toml");
    let build = config["build"].as_table().expect("[build] in .cargo/config.toml");
    assert_eq!(build["target"].as_str(), Some("host-tuple"), "evcxr passes --target <host>");
    let flags: Vec<_> = build["rustflags"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert_eq!(flags, ["-Cprefer-dynamic"], "evcxr sets RUSTFLAGS=-Cprefer-dynamic");
}

#[test]
fn makefile_pins_that_evcxr() {
    let makefile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Makefile")).unwrap();
    let pinned = format!("EVCXR_VERSION := {EVCXR_VERSION}");
    assert!(
        makefile.contains(&pinned),
        "the Makefile must install evcxr {EVCXR_VERSION}, whose profile is copied here"
    );
}

/// The binaries link libstd dynamically (like the kernel's cells): they must still start
/// without LD_LIBRARY_PATH, as `make report` runs them (build.rs writes the rpath).
#[test]
fn the_binary_starts_without_a_library_path() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_condgen"))
        .arg("--version")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("condgen runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
