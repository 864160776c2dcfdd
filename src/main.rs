//! The `cloakroom` binary: parse the command line, hand over to the library.

use clap::Parser;

fn main() {
    let cli = cloakroom::cli::Cli::parse();
    if let Err(e) = cloakroom::cli::run(cli) {
        eprintln!("cloakroom: {e}");
        std::process::exit(2);
    }
}
