//! What can end a trace before its report, and the documented exit status
//! of each (`tracer --help`, docs/usage.md): the one place the statuses are
//! decided.

use crate::{
    host::scope::ScopeError, kernel::preflight::PreflightError, kernel::probes::ProbeError,
    live::LiveError, session::continuous::ContinuousError, session::start::StartError,
    session::target::TargetError,
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    #[error(transparent)]
    Output(#[from] crate::session::output::OutputError),
    #[error(transparent)]
    Otlp(#[from] crate::otlp_exporter::OtlpError),
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    /// The documented exit status (see `tracer --help`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Preflight(PreflightError::NotPrivileged { .. }) => 3,
            Self::Preflight(_) | Self::Probes(ProbeError::Btf(_)) => 5,
            Self::Target(_) | Self::Scope(_) => 4,
            Self::Serve(_) => 8,
            Self::Otlp(_) => 2,
            Self::Output(_) => 7,
            Self::Live(LiveError::NotATerminal) => 9,
            Self::Live(LiveError::Terminal(_)) => 1,
            Self::Probes(ProbeError::Verifier { .. }) | Self::Probes(ProbeError::Load(_)) => 6,
            Self::Probes(ProbeError::Attach { .. }) => 5,
            Self::Probes(_) | Self::Io { .. } => 1,
        }
    }
}

impl From<ContinuousError> for RunError {
    fn from(err: ContinuousError) -> Self {
        match err {
            ContinuousError::Serve(err) => Self::Serve(err),
            ContinuousError::Output(err) => Self::Output(err),
            ContinuousError::Probes(err) => Self::Probes(err),
            ContinuousError::Otlp(err) => Self::Otlp(err),
        }
    }
}

impl From<StartError> for RunError {
    fn from(err: StartError) -> Self {
        match err {
            StartError::Target(err) => Self::Target(err),
            StartError::Probes(err) => Self::Probes(err),
        }
    }
}

pub fn io_err(context: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Io { context, source }
}
