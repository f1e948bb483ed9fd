//! Benchmark floor for instantiation: a component with one exported function that returns a
//! constant, built with the same toolchain and release profile as mangopay-auth.

/// What `answer` returns.
pub const ANSWER: u32 = 42;

#[cfg(target_arch = "wasm32")]
mod glue {
    wit_bindgen::generate!({
        world: "floor-const",
        path: "wit",
    });

    struct Floor;

    export!(Floor);

    impl Guest for Floor {
        fn answer() -> u32 {
            super::ANSWER
        }
    }
}
