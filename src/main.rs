//! The `synack` command: the command line (src/cli.rs) and `synack demo` (src/demo.rs)
//! over the library's engine and the core crate.

mod cli;
mod demo;

#[global_allocator]
static ALLOCATOR: synack::alloc::Allocator = synack::alloc::Allocator;

fn main() {
    std::process::exit(cli::main());
}
