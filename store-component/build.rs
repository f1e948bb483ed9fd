// The shared glue (../src/glue.rs) picks the `component-with-store` world under this cfg.
fn main() {
    println!("cargo::rustc-cfg=shared_store");
}
