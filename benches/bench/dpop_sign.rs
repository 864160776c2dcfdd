//! `dpop-sign` (`bench/dpop.sh`): the cost of one DPoP proof — what `bff.oidc.dpop = "on"`
//! adds to every upstream call — for each algorithm, as a plain timing loop over
//! `DpopKey::proof` (claims, base64url, one signature).

use cloakroom::jwt::dpop::{DpopAlg, DpopKey};
use std::time::Instant;

/// Options of `dpop-sign`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Proofs per algorithm and round.
    #[arg(long, default_value_t = 20_000)]
    pub proofs: u32,
    /// Rounds (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// Prints one row per algorithm: the median microseconds per proof over the rounds.
pub fn main(opts: Options) -> anyhow::Result<()> {
    let token = "x".repeat(600);
    let url = "https://api.example/notes/123";
    println!("| algorithm | µs per proof (median of {} × {}) |\n|---|---|", opts.rounds, opts.proofs);
    for alg in DpopAlg::ALL {
        let key = DpopKey::generate(alg);
        let mut rounds: Vec<f64> = (0..opts.rounds.max(1))
            .map(|_| {
                let started = Instant::now();
                for _ in 0..opts.proofs {
                    std::hint::black_box(key.proof("GET", url, Some(&token), None));
                }
                started.elapsed().as_secs_f64() * 1e6 / f64::from(opts.proofs.max(1))
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        println!("| {} | {:.1} |", alg.name(), rounds[rounds.len() / 2]);
    }
    Ok(())
}
