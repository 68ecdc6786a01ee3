//! Rebuild the object when bpf-linker changes: the linker, not rustc, emits
//! the final BPF code and its BTF, so a new linker means a new object.
fn main() {
    match which::which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(e) => println!("cargo:warning=bpf-linker not found on PATH ({e}); run `cargo xtask setup`"),
    }
}
