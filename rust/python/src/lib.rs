//! `winback._winback`: the Python extension. It only converts Arrow data to slices, calls
//! `winback-core` with the GIL released, and converts results and errors back.

mod arrow_io;
mod errors;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyList, PyString, PyTuple};
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::PyTable;
use winback_core::compress::compress_rows;
use winback_core::customer::score_customer as score_one_customer;
use winback_core::hashing::stable_hashes;
use winback_core::iso::iso_micros;
use winback_core::panel::{build_panel, PanelParams};
use winback_core::silence::{score_columns as score_silence, SilenceParams};
use winback_core::summary::{summarise, SummaryParams};
use winback_core::KernelError;

/// Runs `work` without the GIL, turning a panic into a `WinbackError` instead of a crash; the
/// kernel's own error is left to the caller.
fn run_kernel_raw<T: Send>(
    py: Python<'_>,
    context: &str,
    work: impl FnOnce() -> Result<T, KernelError> + Send,
) -> PyResult<Result<T, KernelError>> {
    py.detach(|| catch_unwind(AssertUnwindSafe(work)))
        .map_err(|_| errors::internal_error(context))
}

/// [`run_kernel_raw`] with kernel errors mapped to the typed Python exceptions.
fn run_kernel<T: Send>(
    py: Python<'_>,
    context: &str,
    work: impl FnOnce() -> Result<T, KernelError> + Send,
) -> PyResult<T> {
    run_kernel_raw(py, context, work)?.map_err(|e| errors::kernel_error(&e))
}

/// Silence scoring of a prepared table (customer, ts as µs, optional amount); see `_winback.pyi`.
#[pyfunction]
#[pyo3(signature = (data, *, as_of_us, resolution_us, min_occasions, trf_cuts, s_cuts, num_threads=None))]
fn silence(
    py: Python<'_>,
    data: AnyRecordBatch,
    as_of_us: i64,
    resolution_us: i64,
    min_occasions: u32,
    trf_cuts: [f64; 4],
    s_cuts: [f64; 2],
    num_threads: Option<usize>,
) -> PyResult<(PyTable, u64, u64)> {
    let columns = arrow_io::transaction_columns(data)?;
    let params = SilenceParams {
        as_of_us,
        resolution_us,
        min_occasions,
        trf_cuts,
        s_cuts,
        num_threads,
    };
    let mut table = run_kernel(py, "silence scoring", || {
        score_silence(&columns.keys(), columns.times(), columns.amounts(), &params)
    })?;
    let (rows_used, rows_after) = (table.rows_used, table.rows_after_as_of);
    let ids = columns.owned_customer_ids(std::mem::take(&mut table.ids))?;
    let out = arrow_io::silence_table(table, ids, columns.amounts().is_some(), resolution_us)?;
    Ok((out, rows_used, rows_after))
}

/// Per-customer sufficient statistics of a prepared table (docs/methods.md#summary); see
/// `_winback.pyi`.
#[pyfunction]
#[pyo3(signature = (
    data, *, calibration_end_us, max_time_us, resolution_us, unit_us, period_edges_us=None,
    num_threads=None
))]
fn summary(
    py: Python<'_>,
    data: AnyRecordBatch,
    calibration_end_us: i64,
    max_time_us: i64,
    resolution_us: i64,
    unit_us: i64,
    period_edges_us: Option<Vec<i64>>,
    num_threads: Option<usize>,
) -> PyResult<(PyTable, BTreeMap<&'static str, u64>)> {
    let columns = arrow_io::transaction_columns(data)?;
    let params = SummaryParams {
        calibration_end_us,
        max_time_us,
        resolution_us,
        unit_us,
        period_edges_us: period_edges_us.unwrap_or_default(),
        num_threads,
    };
    let table = run_kernel(py, "the summary", || {
        summarise(&columns.keys(), columns.times(), columns.amounts(), &params)
    })?;
    let ids = columns.customer_ids(&table.ids)?;
    let out = arrow_io::summary_table(&table, ids, columns.amounts().is_some())?;
    Ok((out, BTreeMap::from(table.counts())))
}

/// The customer × period panel of a prepared table (docs/methods.md#periods); see `_winback.pyi`.
#[pyfunction]
#[pyo3(signature = (data, *, max_time_us, resolution_us, period_edges_us, num_threads=None))]
fn panel(
    py: Python<'_>,
    data: AnyRecordBatch,
    max_time_us: i64,
    resolution_us: i64,
    period_edges_us: Vec<i64>,
    num_threads: Option<usize>,
) -> PyResult<(PyTable, PyTable, u64)> {
    let columns = arrow_io::transaction_columns(data)?;
    let params = PanelParams {
        max_time_us,
        resolution_us,
        period_edges_us,
        num_threads,
    };
    let panel = run_kernel(py, "the value panel", || {
        build_panel(&columns.keys(), columns.times(), columns.amounts(), &params)
    })?;
    let ids = columns.customer_ids(&panel.ids)?;
    let (customers, rows) = arrow_io::panel_tables(&panel, ids)?;
    Ok((customers, rows, panel.rows_excluded))
}

/// One customer's silence figures and summary from its own rows, without a table
/// (docs/methods.md#scorer); see `_winback.pyi`.
#[pyfunction]
#[allow(clippy::needless_pass_by_value)] // pyo3 extracts the buffers by value
#[pyo3(signature = (
    times_us, amounts=None, *, as_of_us, resolution_us, min_occasions, trf_cuts, s_cuts, unit_us
))]
fn score_customer<'py>(
    py: Python<'py>,
    times_us: PyBuffer<i64>,
    amounts: Option<PyBuffer<f64>>,
    as_of_us: i64,
    resolution_us: i64,
    min_occasions: u32,
    trf_cuts: [f64; 4],
    s_cuts: [f64; 2],
    unit_us: i64,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let times = times_us.to_vec(py)?;
    let amounts = amounts.map(|values| values.to_vec(py)).transpose()?;
    let params = SilenceParams {
        as_of_us,
        resolution_us,
        min_occasions,
        trf_cuts,
        s_cuts,
        num_threads: None,
    };
    let scored = run_kernel(py, "customer scoring", || {
        score_one_customer(&times, amounts.as_deref(), &params, unit_us)
    })?;
    let Some((s, m)) = scored else {
        return Ok(None);
    };
    let items: [Bound<'py, PyAny>; 21] = [
        s.status.into_pyobject(py)?.into_any(),
        s.n_occasions.into_pyobject(py)?.into_any(),
        s.first_us.into_pyobject(py)?.into_any(),
        s.last_us.into_pyobject(py)?.into_any(),
        s.tenure_days.into_pyobject(py)?.into_any(),
        s.recency_days.into_pyobject(py)?.into_any(),
        s.max_gap_days.into_pyobject(py)?.into_any(),
        s.mean_gap_days.into_pyobject(py)?.into_any(),
        s.median_gap_days.into_pyobject(py)?.into_any(),
        s.recency_rank.into_pyobject(py)?.into_any(),
        s.rank_ratio.into_pyobject(py)?.into_any(),
        s.silence_score.into_pyobject(py)?.into_any(),
        s.group.into_pyobject(py)?.into_any(),
        s.band.into_pyobject(py)?.into_any(),
        s.total_amount.into_pyobject(py)?.into_any(),
        s.mean_amount.into_pyobject(py)?.into_any(),
        m.frequency.into_pyobject(py)?.into_any(),
        m.recency.into_pyobject(py)?.into_any(),
        m.t.into_pyobject(py)?.into_any(),
        m.monetary_value.into_pyobject(py)?.into_any(),
        m.spend_frequency.into_pyobject(py)?.into_any(),
    ];
    Ok(Some(PyTuple::new(py, items)?))
}

/// Distinct rows of numeric columns with their `count` (and ranks); see `_winback.pyi`.
#[pyfunction]
#[pyo3(signature = (data, *, ranks=false))]
fn compress(py: Python<'_>, data: AnyRecordBatch, ranks: bool) -> PyResult<PyTable> {
    let columns = arrow_io::float_columns(data)?;
    let compressed = run_kernel_raw(py, "compression", || {
        let mut out = compress_rows(&columns.slices())?;
        if ranks {
            out.ranks();
        } else {
            out.ranks = None;
        }
        Ok(out)
    })?
    .map_err(|e| match e {
        KernelError::NotANumber { column, row } => errors::nan_error(&columns.names[column], row),
        other => errors::kernel_error(&other),
    })?;
    arrow_io::compressed_table(&columns.names, compressed)
}

/// Stable BLAKE2b-64 hash of `prefix ‖ id` per customer id (docs/methods.md#campaign-hash); see
/// `_winback.pyi`.
#[pyfunction]
#[pyo3(signature = (data, *, prefix, num_threads=None))]
fn stable_hash(
    py: Python<'_>,
    data: AnyRecordBatch,
    prefix: &[u8],
    num_threads: Option<usize>,
) -> PyResult<PyTable> {
    let column = arrow_io::key_column(data)?;
    let hashes = run_kernel(py, "hashing", || {
        stable_hashes(&column.keys(), prefix, num_threads)
    })?;
    arrow_io::hash_table(hashes)
}

/// Naive ISO times of three shapes as µs since the epoch, little-endian int64 bytes; `None` when
/// any item is not a string of one of them (docs/methods.md#as-of); see `_winback.pyi`.
#[pyfunction]
fn iso_times_us<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyList>,
) -> Option<Bound<'py, PyByteArray>> {
    let mut micros = Vec::with_capacity(texts.len() * 8);
    for item in texts.iter() {
        let text = item.cast::<PyString>().ok()?;
        let text = text.to_str().ok()?; // not UTF-8 (a lone surrogate): no ISO time
        micros.extend_from_slice(&iso_micros(text.as_bytes())?.to_le_bytes());
    }
    Some(PyByteArray::new(py, &micros))
}

/// Number of worker threads a call would use (`WINBACK_NUM_THREADS` or the core count).
#[pyfunction]
#[pyo3(signature = (num_threads=None))]
fn effective_threads(num_threads: Option<usize>) -> usize {
    winback_core::parallelism::effective_threads(num_threads)
}

/// Panics inside the kernel runner; lets the tests prove a panic never reaches Python as a crash.
#[pyfunction]
fn _panic_for_test(py: Python<'_>) -> PyResult<()> {
    run_kernel(py, "the panic self-test", || -> Result<(), KernelError> {
        panic!("deliberate test panic")
    })
}

#[pymodule(gil_used = false)]
fn _winback(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(silence, m)?)?;
    m.add_function(wrap_pyfunction!(summary, m)?)?;
    m.add_function(wrap_pyfunction!(panel, m)?)?;
    m.add_function(wrap_pyfunction!(score_customer, m)?)?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(stable_hash, m)?)?;
    m.add_function(wrap_pyfunction!(iso_times_us, m)?)?;
    m.add_function(wrap_pyfunction!(effective_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
