//! Every function shape the attribute supports, compiled here under the
//! workspace's clippy settings and run; `tests/ui.rs` compiles the same
//! files standalone under `#![deny(warnings)]`.
#![warn(clippy::pedantic)]

#[path = "ui/pass/async_fns.rs"]
mod async_fns;
#[path = "ui/pass/crate_rename.rs"]
mod crate_rename;
#[path = "ui/pass/free_fns.rs"]
mod free_fns;
#[path = "ui/pass/methods.rs"]
mod methods;

#[test]
fn free_functions_keep_their_signatures() {
    free_fns::main();
}

#[test]
fn methods_with_every_receiver_keep_their_signatures() {
    methods::main();
}

#[test]
fn async_functions_run_on_any_executor() {
    async_fns::main();
}

#[test]
fn the_runtime_can_be_reached_through_a_reexport() {
    crate_rename::main();
}
