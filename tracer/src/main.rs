//! The `tracer` command: parse the options, open the outputs, run the
//! trace, write the report, map errors to documented exit codes.

use std::{io::Write, process::ExitCode, time::Instant};

use anyhow::Context as _;
use clap::Parser as _;
use tracer::{
    cli, report, run,
    session::output::{self, Output},
};

fn main() -> ExitCode {
    let started = Instant::now();
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        Err(err) => {
            let hint = cli::hint(&err);
            let _ = err.print();
            if let Some(hint) = hint {
                eprintln!("\n{hint}");
            }
            return ExitCode::from(err.exit_code() as u8);
        }
    };
    if let Some(kind) = args.generate {
        let mut stdout = std::io::stdout().lock();
        return match cli::generate(kind, &mut stdout).and_then(|()| stdout.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: writing the {kind:?} output: {err}");
                ExitCode::from(OUTPUT_EXIT)
            }
        };
    }
    if let Err(message) = args.validate() {
        eprintln!("error: {message}\n\nFor more information, try '--help'.");
        return ExitCode::from(2);
    }
    // `RUST_LOG` set: someone reading the tracer's own account, who needs
    // to know when each line was said (a binary's tables read seconds
    // late); `-v` alone stays terse.
    let timestamps = std::env::var_os("RUST_LOG").map(|_| env_logger::TimestampPrecision::Millis);
    env_logger::Builder::new()
        .filter_level(if args.verbose {
            log::LevelFilter::Info
        } else {
            log::LevelFilter::Warn
        })
        .parse_default_env()
        .format_target(false)
        .format_timestamp(timestamps)
        .init();

    // Every output is opened before tracing: a bad path fails now, not
    // after the trace.
    let outputs = match Outputs::open(&args) {
        Ok(outputs) => outputs,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(OUTPUT_EXIT);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            outputs.discard();
            return ExitCode::from(1);
        }
    };
    let (report, mut probes) = match runtime.block_on(run::run(&args, started)) {
        Ok(done) => done,
        Err(err) => {
            eprintln!("error: {err}");
            outputs.discard();
            return ExitCode::from(err.exit_code() as u8);
        }
    };
    let written = outputs.write(&args, &report);
    log::info!("report written after {:?}", started.elapsed());
    // After the report: the user does not wait for the kernel's teardown.
    if let Some(probes) = probes.as_mut() {
        probes.detach();
        log::info!("detached after {:?}", started.elapsed());
    }
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(OUTPUT_EXIT)
        }
    }
}

/// Exit status when an output file cannot be opened or written.
const OUTPUT_EXIT: u8 = 7;

/// The files asked for, open and checked before tracing.
struct Outputs {
    report: Option<Output>,
    folded: Option<Output>,
    speedscope: Option<Output>,
    flamegraph: Option<Output>,
    pprof: Option<Output>,
    memory_flamegraph: Option<Output>,
    memory_pprof: Option<Output>,
    perfetto: Option<Output>,
}

impl Outputs {
    fn open(args: &cli::Args) -> Result<Self, output::OutputError> {
        let mut opened: Vec<Option<Output>> = Vec::new();
        // --every: -o is the windows' directory (opened by the run).
        let report = if args.every.is_some() {
            &None
        } else {
            &args.output
        };
        for path in [
            report,
            &args.folded,
            &args.speedscope,
            &args.flamegraph,
            &args.pprof,
            &args.memory_flamegraph,
            &args.memory_pprof,
            &args.perfetto,
        ] {
            match path.as_deref().map(Output::open).transpose() {
                Ok(output) => opened.push(output),
                Err(err) => {
                    // None left behind empty by a run that does not happen.
                    opened.into_iter().flatten().for_each(Output::discard);
                    return Err(err);
                }
            }
        }
        let mut opened = opened.into_iter();
        let mut next = || opened.next().flatten();
        Ok(Self {
            report: next(),
            folded: next(),
            speedscope: next(),
            flamegraph: next(),
            pprof: next(),
            memory_flamegraph: next(),
            memory_pprof: next(),
            perfetto: next(),
        })
    }

    /// The width the text report is fitted to: `--width`, else the
    /// terminal's when the report goes to one; `None`: no limit.
    fn text_width(&self, args: &cli::Args) -> Option<usize> {
        match args.width {
            Some(0) => None,
            Some(cols) => Some(cols.max(MIN_WIDTH)),
            None if self.report.is_none() => terminal_columns(),
            None => None,
        }
    }

    /// Tracing failed: files created for it are removed.
    fn discard(self) {
        for output in [
            self.report,
            self.folded,
            self.speedscope,
            self.flamegraph,
            self.pprof,
            self.memory_flamegraph,
            self.memory_pprof,
            self.perfetto,
        ]
        .into_iter()
        .flatten()
        {
            output.discard();
        }
    }

    /// The report first: a side output that fails never costs it.
    fn write(self, args: &cli::Args, report: &report::Report) -> anyhow::Result<()> {
        // JSON is written as it is serialised (see `json::write`).
        let json = matches!(args.format, cli::Format::Json) && report.metrics.is_none();
        let rendered = match args.format {
            _ if json => String::new(),
            // --serve: the final figures, as the endpoint served them.
            _ if report.metrics.is_some() => report
                .metrics
                .as_ref()
                .map(report::metrics::prometheus_text)
                .unwrap_or_default(),
            cli::Format::Text if args.dump => report::text::render_dump(report),
            cli::Format::Text => report::text::render(report, self.text_width(args)),
            cli::Format::Json => report::json::render(report),
        };
        let quiet = args.quiet;
        // --every: the reports went to the directory, window by window.
        if args.every.is_some() {
            return Ok(());
        }
        match self.report {
            Some(output) => {
                let path = output.path().to_path_buf();
                if json {
                    output.write_with(|file| report::json::write(report, file))?;
                } else {
                    output.write(rendered.as_bytes())?;
                }
                if !quiet {
                    eprintln!("tracer: report written to {}", path.display());
                }
            }
            None => {
                let mut stdout = std::io::stdout().lock();
                let written = if json {
                    report::json::write(report, &mut stdout)
                } else {
                    stdout.write_all(rendered.as_bytes())
                };
                written
                    .and_then(|()| stdout.flush())
                    .context("writing the report to standard output")?;
            }
        }
        // Side outputs: one that fails is said and the others still written.
        let mut failed = None;
        let mut side = |what: &str, output: Option<Output>, contents: Result<Vec<u8>, String>| {
            let Some(output) = output else { return };
            let path = output.path().to_path_buf();
            match contents {
                Ok(bytes) => match output.write(&bytes) {
                    Ok(()) if !quiet => eprintln!("tracer: {what} written to {}", path.display()),
                    Ok(()) => {}
                    Err(err) => {
                        eprintln!("error: {err}");
                        failed.get_or_insert(err);
                    }
                },
                // Nothing to draw (no samples): a note, not a failure, and
                // no empty file that its viewer cannot open.
                Err(why) => {
                    eprintln!(
                        "tracer: no {what} written to {}: {why}",
                        output.path().display()
                    );
                    output.discard();
                }
            }
        };
        let roots = if args.merge_processes {
            report::flame::Roots::Merged
        } else {
            report::flame::Roots::PerProcess
        };
        let stacks = |render: &dyn Fn() -> String| match report::flame::nothing_to_draw(report) {
            Some(why) => Err(why),
            None => Ok(render().into_bytes()),
        };
        side(
            "folded stacks",
            self.folded,
            stacks(&|| report::flame::folded(report, roots)),
        );
        side(
            "speedscope profile",
            self.speedscope,
            stacks(&|| report::flame::speedscope(report)),
        );
        side(
            "flame graph",
            self.flamegraph,
            report::flame::flamegraph(report, roots).map_err(|err| err.to_string()),
        );
        side("pprof profile", self.pprof, report::pprof::render(report));
        side(
            "memory flame graph",
            self.memory_flamegraph,
            report::memory_profile::flamegraph(report),
        );
        side(
            "memory pprof profile",
            self.memory_pprof,
            report::memory_profile::pprof(report),
        );
        side(
            "Perfetto trace",
            self.perfetto,
            report::perfetto::render(report),
        );
        match failed {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }
}

/// Narrower than this, tables could not keep their essential columns.
const MIN_WIDTH: usize = 40;

/// Columns of the terminal on standard output, when it is one.
fn terminal_columns() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize it is given.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then(|| usize::from(size.ws_col).max(MIN_WIDTH))
}
