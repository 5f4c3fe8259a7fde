//! `--live`: a full-screen view of the trace in the terminal, refreshed
//! from a [`Snapshot`] the trace loop sends every `--refresh`
//! seconds. It runs on a thread of its own (keys are read while the loop
//! drains the kernel's events) and says when `q` or Ctrl-C asks to stop.
//! The terminal is restored on every way out: the view's end (q, Ctrl-C,
//! the target's exit, a signal to the tracer) and a panic; what the
//! tracer writes to standard error meanwhile is held and written after.

pub mod render;
pub mod view;

use std::{
    io::{IsTerminal as _, Seek as _, Stdout},
    os::fd::FromRawFd as _,
    sync::{
        Once,
        atomic::{AtomicI32, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use crossterm::{
    event::{self, Event, KeyCode, KeyEventKind, KeyModifiers},
    execute,
    terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::{Terminal, backend::CrosstermBackend};

use crate::analysis::live_model::Snapshot;
use view::{Action, Key, View};

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "--live draws a full-screen view on a terminal, and standard output is not one: \
         run it in a terminal, or trace without --live (-o FILE writes the report)"
    )]
    NotATerminal,
    #[error("--live: the terminal: {0}")]
    Terminal(#[source] std::io::Error),
}

/// How often keys are looked for between snapshots.
const KEY_POLL: Duration = Duration::from_millis(50);

/// The view, running.
pub struct Live {
    snapshots: Option<mpsc::Sender<Snapshot>>,
    thread: Option<JoinHandle<()>>,
}

/// Says once when the view asks to stop (q, Ctrl-C, or it failed).
pub type QuitRequests = tokio::sync::mpsc::UnboundedReceiver<()>;

impl Live {
    /// Before anything is loaded: the view needs a terminal.
    pub fn check_terminal() -> Result<(), LiveError> {
        if std::io::stdout().is_terminal() {
            Ok(())
        } else {
            Err(LiveError::NotATerminal)
        }
    }

    /// Takes the terminal (raw mode, the alternate screen) and starts the
    /// view's thread.
    pub fn start() -> Result<(Self, QuitRequests), LiveError> {
        restore_on_panic();
        let terminal = enter().map_err(LiveError::Terminal)?;
        hold_stderr();
        let (snapshots, received) = mpsc::channel();
        let (quit, requests) = tokio::sync::mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("tracer-live".into())
            .spawn(move || {
                let mut terminal = terminal;
                if let Err(err) = run(&mut terminal.0, &received, &quit) {
                    log::warn!("--live: the terminal: {err}");
                }
                // Whatever ended the view ends the trace.
                let _ = quit.send(());
            })
            .map_err(LiveError::Terminal)?;
        Ok((
            Self {
                snapshots: Some(snapshots),
                thread: Some(thread),
            },
            requests,
        ))
    }

    /// The figures of now, shown unless the view is paused.
    pub fn show(&self, snapshot: Snapshot) {
        if let Some(snapshots) = &self.snapshots {
            let _ = snapshots.send(snapshot);
        }
    }

    /// Ends the view and gives the terminal back as it was.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // The thread sees the channel closed, and its terminal is dropped.
        self.snapshots = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The terminal, taken; given back when dropped.
struct Taken(Terminal<CrosstermBackend<Stdout>>);

impl Drop for Taken {
    fn drop(&mut self) {
        restore();
    }
}

fn enter() -> std::io::Result<Taken> {
    terminal::enable_raw_mode()?;
    let taken = (|| {
        let mut stdout = std::io::stdout();
        execute!(stdout, EnterAlternateScreen)?;
        let mut terminal = Terminal::new(CrosstermBackend::new(stdout))?;
        terminal.hide_cursor()?;
        terminal.clear()?;
        Ok(Taken(terminal))
    })();
    if taken.is_err() {
        restore();
    }
    taken
}

/// Leaves the alternate screen and raw mode, shows the cursor, and writes
/// out what standard error was given meanwhile: safe to call more than once.
fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    release_stderr();
}

/// While the view is up: standard error as it was (a duplicate), and the
/// memory file that takes its place (-1: none).
static SAVED_STDERR: AtomicI32 = AtomicI32::new(-1);
static HELD_STDERR: AtomicI32 = AtomicI32::new(-1);

/// What the tracer writes to standard error while the view is up (a
/// warning, `-v`'s log) would be drawn over it: it is held in a memory
/// file instead, and written out when the terminal is given back. Left as
/// it is if that cannot be set up.
fn hold_stderr() {
    // SAFETY: plain calls on descriptors this function owns; fd 2 is
    // replaced atomically by dup2.
    unsafe {
        let held = libc::memfd_create(c"tracer-live-stderr".as_ptr(), libc::MFD_CLOEXEC);
        let saved = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
        if held < 0 || saved < 0 || libc::dup2(held, 2) < 0 {
            for fd in [held, saved].into_iter().filter(|&fd| fd >= 0) {
                libc::close(fd);
            }
            return;
        }
        SAVED_STDERR.store(saved, Ordering::SeqCst);
        HELD_STDERR.store(held, Ordering::SeqCst);
    }
}

/// Standard error back, and what was held written to it.
fn release_stderr() {
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    let held = HELD_STDERR.swap(-1, Ordering::SeqCst);
    if saved < 0 || held < 0 {
        return;
    }
    // SAFETY: both descriptors were made by `hold_stderr` and are owned
    // here alone (taken out of the statics above).
    let mut held = unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
        std::fs::File::from_raw_fd(held)
    };
    if held.rewind().is_ok() {
        let _ = std::io::copy(&mut held, &mut std::io::stderr());
    }
}

/// A panic anywhere gives the terminal back before its message is printed.
fn restore_on_panic() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Draws each snapshot and answers keys until the trace closes the
/// channel or a key asks to quit.
fn run(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    snapshots: &mpsc::Receiver<Snapshot>,
    quit: &tokio::sync::mpsc::UnboundedSender<()>,
) -> std::io::Result<()> {
    let mut view = View::default();
    let mut shown: Option<Snapshot> = None;
    let mut dirty = true;
    loop {
        loop {
            match snapshots.try_recv() {
                Ok(snapshot) if !view.paused => {
                    shown = Some(snapshot);
                    dirty = true;
                }
                Ok(_) => {}
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
            }
        }
        if dirty {
            terminal.draw(|frame| render::draw(frame, shown.as_ref(), &view))?;
            dirty = false;
        }
        if !event::poll(KEY_POLL)? {
            continue;
        }
        match event::read()? {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                let Some(key) = key_of(key.code, key.modifiers) else {
                    continue;
                };
                match view.on_key(key) {
                    Action::Quit => {
                        let _ = quit.send(());
                        // Drawn as it is until the trace closes the view.
                    }
                    Action::Redraw => dirty = true,
                    Action::None => {}
                }
            }
            Event::Resize(..) => dirty = true,
            _ => {}
        }
    }
}

fn key_of(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Key::Interrupt,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}
