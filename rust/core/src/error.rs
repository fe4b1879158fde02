//! Errors of the core kernels. They carry enough context for the bindings to build a message that
//! says what to do; the kernels never panic on user data.

/// An error raised by a core kernel on invalid arguments or input shapes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// Input columns of one table have different lengths.
    #[error("column '{column}' has {actual} rows but the customer column has {expected}")]
    LengthMismatch {
        column: &'static str,
        expected: usize,
        actual: usize,
    },
    /// More rows than one in-memory call can index.
    #[error("{rows} rows exceed the in-memory limit of {limit} rows per call; split the input")]
    TooManyRows { rows: usize, limit: usize },
    /// A parameter is out of its domain.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// A value that has no order (NaN) where values are compared.
    #[error("column {column} holds NaN at row {row}; NaN values cannot be compared or counted")]
    NotANumber { column: usize, row: usize },
    /// A thread pool could not be created.
    #[error("could not start a thread pool of {threads} threads: {reason}")]
    ThreadPool { threads: usize, reason: String },
}
