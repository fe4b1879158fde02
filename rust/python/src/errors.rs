//! Maps core errors to the Python exception classes of `winback.errors` (Python owns the classes).

use pyo3::import_exception;
use pyo3::PyErr;
use winback_core::KernelError;

import_exception!(winback.errors, WinbackError);
import_exception!(winback.errors, WinbackInputError);
import_exception!(winback.errors, WinbackConfigError);

/// Converts a kernel error to the matching typed Python exception.
pub fn kernel_error(err: &KernelError) -> PyErr {
    let message = err.to_string();
    match err {
        KernelError::InvalidParameter { .. } => WinbackConfigError::new_err(message),
        KernelError::LengthMismatch { .. }
        | KernelError::TooManyRows { .. }
        | KernelError::NotANumber { .. } => WinbackInputError::new_err(message),
        _ => WinbackError::new_err(message),
    }
}

/// A Rust panic caught at the boundary: a bug, reported as an error rather than a crash.
pub fn internal_error(context: &str) -> PyErr {
    WinbackError::new_err(format!(
        "internal error in {context} (a bug in winback, please report it with the input that caused it)"
    ))
}

/// A NaN where values are compared, named by its column.
pub fn nan_error(column: &str, row: usize) -> PyErr {
    WinbackInputError::new_err(format!(
        "column '{column}' holds NaN at row {row}; NaN values cannot be compared or counted. \
         Drop or fill those rows first"
    ))
}
