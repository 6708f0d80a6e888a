//! Link flags of the server binaries: ks-server here, and as-server (ks-reactive's manifest
//! names this script as its own).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu {
        // Relative relocations packed (RELR: binutils 2.38, glibc 2.36). The position-independent
        // binary carries some 80 000 of them; as 24-byte RELA entries they are 2 MB the loader
        // reads at every start, resident for the process's life and counted in its RSS; packed
        // they are a few KB.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
