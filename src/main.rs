//! The `cloakroom` binary: parse the command line, hand over to the library.

use clap::Parser;

/// Many small, short-lived allocations per proxied request, across worker threads: mimalloc
/// serves them from thread-local pages, where glibc's malloc spent a tenth of the CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = cloakroom::cli::Cli::parse();
    if let Err(e) = cloakroom::cli::run(cli) {
        eprintln!("cloakroom: {e}");
        std::process::exit(2);
    }
}
