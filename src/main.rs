//! The `provdb` command line: import, inspect, serve, query.

mod allocator;
mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_default_sigpipe();
    let args = cli::Cli::parse();
    allocator::tune(if args.command.is_interactive() {
        allocator::Workload::Query
    } else if args.command.is_service() {
        allocator::Workload::Service
    } else {
        allocator::Workload::Batch
    });
    cli::init_logging(args.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, which turns `provdb stats | head` into a "Broken pipe" panic in
/// `println!`. A command-line tool should instead end quietly, as the default action does.
#[allow(unsafe_code)]
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
