//! `tracer`: attach eBPF programs to a Python process (or launch one) and
//! report what the kernel did to it.
//!
//! Data flows one way: kernel programs -> ring buffer and maps -> `events`
//! decoder -> `analysis` aggregators -> one `report::Report` -> renderers.

mod analysis;
mod btf;
mod cli;
mod events;
mod files;
mod frame;

mod preflight;
mod probes;
mod procfs;
mod python;
mod report;
mod run;
mod status;
mod target;
mod tracefs;

use std::{io::Write, process::ExitCode, time::Instant};

use anyhow::Context as _;
use clap::Parser;

fn main() -> ExitCode {
    let started = Instant::now();
    let args = cli::Args::parse();
    if let Err(message) = args.validate() {
        eprintln!("error: {message}\n\nFor more information, try '--help'.");
        return ExitCode::from(2);
    }
    env_logger::Builder::new()
        .filter_level(if args.verbose {
            log::LevelFilter::Info
        } else {
            log::LevelFilter::Warn
        })
        .parse_default_env()
        .format_target(false)
        .format_timestamp(None)
        .init();

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let (report, mut probes) = match runtime.block_on(run::run(&args, started)) {
        Ok(done) => done,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(err.exit_code() as u8);
        }
    };
    let written = write_report(&args, &report);
    // After the report: the user does not wait for the kernel's teardown.
    probes.detach();
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn write_report(args: &cli::Args, report: &report::Report) -> anyhow::Result<()> {
    let rendered = match args.format {
        cli::Format::Text => report::text::render(report),
        cli::Format::Json => report::json::render(report),
    };
    if let Some(path) = &args.folded {
        std::fs::write(path, report::flame::folded(report))
            .with_context(|| format!("writing folded stacks to {}", path.display()))?;
    }
    if let Some(path) = &args.speedscope {
        std::fs::write(path, report::flame::speedscope(report))
            .with_context(|| format!("writing the speedscope profile to {}", path.display()))?;
    }
    if let Some(path) = &args.flamegraph {
        match report::flame::flamegraph(report) {
            Ok(svg) => std::fs::write(path, svg)
                .with_context(|| format!("writing the flame graph to {}", path.display()))?,
            // The report itself is still worth writing.
            Err(err) => eprintln!(
                "tracer: no flame graph written to {}: {err}",
                path.display()
            ),
        }
    }
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("writing the report to {}", path.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(rendered.as_bytes())
                .and_then(|()| stdout.flush())
                .context("writing the report to standard output")
        }
    }
}
