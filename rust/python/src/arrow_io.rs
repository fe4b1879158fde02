//! Arrow ↔ slices: extracts the prepared transaction columns and builds the output batches.
//! No math happens here.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float64Type, Int64Type, TimestampMicrosecondType, UInt32Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, Float64Array, Int64Array, PrimitiveArray, RecordBatch,
    StringViewArray, UInt32Array, UInt64Array,
};
use arrow_buffer::{Buffer, NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema};
use pyo3::prelude::*;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::PyTable;
use winback_core::compress::Compressed;
use winback_core::keys::{CustomerIds, CustomerKeys, ViewKeys};
use winback_core::occasions::MICROS_PER_DAY;
use winback_core::panel::PeriodRow;
use winback_core::silence::{SilenceColumns, STATUS_SCORED};
use winback_core::summary::{CustomerSummary, SummaryTable};

use crate::errors::WinbackInputError;

/// Owned, type-normalised columns: customer (Int64 or LargeUtf8), ts (Int64 µs), amount.
pub struct TransactionColumns {
    customer: ArrayRef,
    times: Int64Array,
    amounts: Option<Float64Array>,
}

impl TransactionColumns {
    pub fn keys(&self) -> CustomerKeys<'_> {
        if let Some(ints) = self.customer.as_primitive_opt::<Int64Type>() {
            CustomerKeys::Int(ints.values())
        } else {
            let strings = self.customer.as_string_view();
            CustomerKeys::View(ViewKeys {
                views: strings.views(),
                buffers: strings
                    .data_buffers()
                    .iter()
                    .map(Buffer::as_slice)
                    .collect(),
            })
        }
    }

    /// Builds the output customer column: Int64, or string views sharing the input's buffers.
    pub fn customer_ids(&self, ids: &CustomerIds) -> PyResult<ArrayRef> {
        self.owned_customer_ids(ids.clone())
    }

    /// [`Self::customer_ids`] taking the ids (no copy of them).
    pub fn owned_customer_ids(&self, ids: CustomerIds) -> PyResult<ArrayRef> {
        Ok(match ids {
            CustomerIds::Int(values) => Arc::new(Int64Array::from(values)),
            CustomerIds::View(views) => {
                let buffers = self.customer.as_string_view().data_buffers().to_vec();
                let array = StringViewArray::try_new(ScalarBuffer::from(views), buffers, None)
                    .map_err(|e| crate::errors::internal_error(&format!("customer ids: {e}")))?;
                Arc::new(array)
            }
        })
    }

    pub fn times(&self) -> &[i64] {
        self.times.values()
    }

    pub fn amounts(&self) -> Option<&[f64]> {
        self.amounts.as_ref().map(|a| &a.values()[..])
    }
}

fn input_error(message: String) -> PyErr {
    WinbackInputError::new_err(message)
}

fn cast_to(array: &ArrayRef, to: &DataType, column: &str) -> PyResult<ArrayRef> {
    if array.null_count() > 0 {
        return Err(input_error(format!(
            "column '{column}' has {} null values; clean them before scoring",
            array.null_count()
        )));
    }
    arrow_cast::cast(array, to).map_err(|e| {
        input_error(format!(
            "column '{column}' of type {} cannot be used as {to}: {e}",
            array.data_type()
        ))
    })
}

/// All batches of `data` as one.
fn combined_batch(data: AnyRecordBatch) -> PyResult<RecordBatch> {
    let table = data.into_table()?;
    let (batches, schema) = table.into_inner();
    arrow_select::concat::concat_batches(&schema, &batches)
        .map_err(|e| input_error(format!("could not combine the input batches: {e}")))
}

/// Reads the prepared table: column 0 customer, 1 ts, 2 (optional) amount.
pub fn transaction_columns(data: AnyRecordBatch) -> PyResult<TransactionColumns> {
    let batch = combined_batch(data)?;
    if batch.num_columns() < 2 {
        return Err(input_error(
            "expected at least the customer and ts columns".to_string(),
        ));
    }
    let customer = batch.column(0);
    let customer = match customer.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            cast_to(customer, &DataType::Utf8View, "customer_id")?
        }
        _ => cast_to(customer, &DataType::Int64, "customer_id")?,
    };
    let times = cast_to(batch.column(1), &DataType::Int64, "ts")?;
    let amounts = if batch.num_columns() > 2 {
        let a = cast_to(batch.column(2), &DataType::Float64, "amount")?;
        Some(a.as_primitive::<Float64Type>().clone())
    } else {
        None
    };
    Ok(TransactionColumns {
        customer,
        times: times.as_primitive::<Int64Type>().clone(),
        amounts,
    })
}

/// Owned customer ids of a one-column table (Int64 or string views), for per-customer kernels.
pub struct KeyColumn {
    ids: TransactionColumns,
}

impl KeyColumn {
    pub fn keys(&self) -> CustomerKeys<'_> {
        self.ids.keys()
    }
}

/// Reads column 0 of `data` as customer ids (integers or strings, no nulls).
pub fn key_column(data: AnyRecordBatch) -> PyResult<KeyColumn> {
    let batch = combined_batch(data)?;
    if batch.num_columns() != 1 {
        return Err(input_error(format!(
            "expected one customer id column, got {}",
            batch.num_columns()
        )));
    }
    let customer = batch.column(0);
    let customer = match customer.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            cast_to(customer, &DataType::Utf8View, "customer_id")?
        }
        _ => cast_to(customer, &DataType::Int64, "customer_id")?,
    };
    Ok(KeyColumn {
        ids: TransactionColumns {
            customer,
            times: Int64Array::from(Vec::<i64>::new()),
            amounts: None,
        },
    })
}

/// A one-column table `hash` (UInt64).
pub fn hash_table(hashes: Vec<u64>) -> PyResult<PyTable> {
    named_table(vec![(
        "hash",
        Arc::new(UInt64Array::from(hashes)) as ArrayRef,
    )])
}

/// Builds the per-customer batch from the kernel's columns, without copying them; gap-based
/// columns are null unless the customer was scored, and the amount columns are null when there
/// was no amount column.
///
/// The columns have their final types, so the Python side wraps them without converting:
/// `n_occasions` and `recency_rank` Int64; `first_ts` and `last_ts` Date32 when `resolution_us` is
/// whole days (an occasion then starts at midnight), else Timestamp(µs).
pub fn silence_table(
    table: SilenceColumns,
    customer_ids: ArrayRef,
    has_amount: bool,
    resolution_us: i64,
) -> PyResult<PyTable> {
    let n = table.len();
    let stamps = |micros: Vec<i64>| -> ArrayRef {
        if resolution_us % MICROS_PER_DAY == 0 {
            let days: Vec<i32> = micros
                .iter()
                .map(|&t| t.div_euclid(MICROS_PER_DAY) as i32)
                .collect();
            drop(micros);
            owned::<Date32Type>(days, None)
        } else {
            owned::<TimestampMicrosecondType>(micros, None)
        }
    };
    let wide = |counts: Vec<u32>, nulls: Option<&NullBuffer>| -> ArrayRef {
        let values: Vec<i64> = counts.iter().map(|&c| i64::from(c)).collect();
        drop(counts);
        owned::<Int64Type>(values, nulls)
    };
    let scored: NullBuffer = table.status.iter().map(|&s| s == STATUS_SCORED).collect();
    let scored = Some(&scored);
    let money = (!has_amount).then(|| NullBuffer::new_null(n));
    let money = money.as_ref();
    named_table(vec![
        ("customer_id", customer_ids),
        ("status", owned::<UInt8Type>(table.status, None)),
        ("n_occasions", wide(table.n_occasions, None)),
        ("first_ts", stamps(table.first_us)),
        ("last_ts", stamps(table.last_us)),
        ("tenure_days", owned::<Float64Type>(table.tenure_days, None)),
        (
            "recency_days",
            owned::<Float64Type>(table.recency_days, None),
        ),
        (
            "max_gap_days",
            owned::<Float64Type>(table.max_gap_days, scored),
        ),
        (
            "mean_gap_days",
            owned::<Float64Type>(table.mean_gap_days, scored),
        ),
        (
            "median_gap_days",
            owned::<Float64Type>(table.median_gap_days, scored),
        ),
        ("recency_rank", wide(table.recency_rank, scored)),
        ("rank_ratio", owned::<Float64Type>(table.rank_ratio, scored)),
        (
            "silence_score",
            owned::<Float64Type>(table.silence_score, scored),
        ),
        ("rank_ratio_group", owned::<UInt8Type>(table.group, scored)),
        ("silence_band", owned::<UInt8Type>(table.band, scored)),
        (
            "total_amount",
            owned::<Float64Type>(table.total_amount, money),
        ),
        (
            "mean_amount",
            owned::<Float64Type>(table.mean_amount, money),
        ),
    ])
}

/// An output column from its values (no copy), null where `nulls` says so.
fn owned<P: ArrowPrimitiveType>(values: Vec<P::Native>, nulls: Option<&NullBuffer>) -> ArrayRef {
    Arc::new(PrimitiveArray::<P>::new(values.into(), nulls.cloned()))
}

/// One output column: `field` of every row, null where `nulls` says so.
fn column<P: ArrowPrimitiveType, T>(
    rows: &[T],
    field: impl Fn(&T) -> P::Native,
    nulls: Option<&NullBuffer>,
) -> ArrayRef {
    Arc::new(PrimitiveArray::<P>::new(
        rows.iter().map(field).collect(),
        nulls.cloned(),
    ))
}

/// A one-batch table of named columns; a column is nullable when it has a validity buffer.
fn named_table<N: AsRef<str>>(columns: Vec<(N, ArrayRef)>) -> PyResult<PyTable> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| {
            Field::new(
                name.as_ref(),
                array.data_type().clone(),
                array.nulls().is_some(),
            )
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)
        .map_err(|e| crate::errors::internal_error(&format!("building the output table: {e}")))?;
    PyTable::try_new(vec![batch], schema)
}

/// Builds the summary batch (docs/methods.md#summary); the amount columns are null when there was
/// no amount column.
pub fn summary_table(
    table: &SummaryTable,
    customer_ids: ArrayRef,
    has_amount: bool,
) -> PyResult<PyTable> {
    let rows = &table.customers;
    let money = (!has_amount).then(|| NullBuffer::new_null(rows.len()));
    let money = money.as_ref();
    let count = |f: fn(&CustomerSummary) -> u32, nulls| column::<UInt32Type, _>(rows, f, nulls);
    let value = |f: fn(&CustomerSummary) -> f64, nulls| column::<Float64Type, _>(rows, f, nulls);
    named_table(vec![
        ("customer_id", customer_ids),
        ("frequency", count(|c| c.frequency, None)),
        ("recency", value(|c| c.recency, None)),
        ("T", value(|c| c.t, None)),
        ("monetary_value", value(|c| c.monetary_value, money)),
        ("spend_frequency", count(|c| c.spend_frequency, money)),
        ("first_amount", value(|c| c.first_amount, money)),
        ("n_periods", count(|c| c.n_periods, None)),
        ("period_frequency", count(|c| c.period_frequency, None)),
        ("frequency_holdout", count(|c| c.frequency_holdout, None)),
        (
            "monetary_value_holdout",
            value(|c| c.monetary_value_holdout, money),
        ),
    ])
}

/// Named Float64 columns of a table (for compression); nulls and non-numeric columns are errors.
pub struct FloatColumns {
    pub names: Vec<String>,
    pub arrays: Vec<Float64Array>,
}

impl FloatColumns {
    pub fn slices(&self) -> Vec<&[f64]> {
        self.arrays.iter().map(|a| &a.values()[..]).collect()
    }
}

/// Reads every column of `data` as Float64.
pub fn float_columns(data: AnyRecordBatch) -> PyResult<FloatColumns> {
    let batch = combined_batch(data)?;
    let schema = batch.schema();
    let mut out = FloatColumns {
        names: Vec::new(),
        arrays: Vec::new(),
    };
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if !column.data_type().is_numeric() {
            return Err(input_error(format!(
                "column '{}' has type {}; only numeric columns can be compressed",
                field.name(),
                column.data_type()
            )));
        }
        let values = cast_to(column, &DataType::Float64, field.name())?;
        out.names.push(field.name().clone());
        out.arrays
            .push(values.as_primitive::<Float64Type>().clone());
    }
    Ok(out)
}

/// The distinct rows as a table (same column names, Float64): the value columns, `count`, then `<name>_rank` (UInt32) per
/// column when the ranks are present.
pub fn compressed_table(names: &[String], compressed: Compressed) -> PyResult<PyTable> {
    let rank_names: Vec<String> = names.iter().map(|n| format!("{n}_rank")).collect();
    let mut columns: Vec<(&str, ArrayRef)> = names
        .iter()
        .zip(compressed.columns)
        .map(|(name, values)| {
            (
                name.as_str(),
                Arc::new(Float64Array::from(values)) as ArrayRef,
            )
        })
        .collect();
    columns.push(("count", Arc::new(UInt64Array::from(compressed.counts))));
    for (name, ranks) in rank_names
        .iter()
        .zip(compressed.ranks.into_iter().flatten())
    {
        columns.push((name.as_str(), Arc::new(UInt32Array::from(ranks))));
    }
    named_table(columns)
}

/// The value panel (docs/methods.md#periods): a one-column table of customer ids and the rows table
/// (`customer_index` into it, `period`, `occasions`, `positive_occasions`, `revenue`,
/// `positive_revenue`).
pub fn panel_tables(
    panel: &winback_core::panel::Panel,
    customer_ids: ArrayRef,
) -> PyResult<(PyTable, PyTable)> {
    let customers = named_table(vec![("customer_id", customer_ids)])?;
    let index: Vec<u32> = panel
        .offsets
        .windows(2)
        .enumerate()
        .flat_map(|(c, w)| std::iter::repeat_n(c as u32, (w[1] - w[0]) as usize))
        .collect();
    let rows = &panel.rows;
    let count = |f: fn(&PeriodRow) -> u32| column::<UInt32Type, _>(rows, f, None);
    let value = |f: fn(&PeriodRow) -> f64| column::<Float64Type, _>(rows, f, None);
    let table = named_table(vec![
        (
            "customer_index",
            Arc::new(PrimitiveArray::<UInt32Type>::from(index)) as ArrayRef,
        ),
        ("period", count(|r| r.period)),
        ("occasions", count(|r| r.occasions)),
        ("positive_occasions", count(|r| r.positive_occasions)),
        ("revenue", value(|r| r.revenue)),
        ("positive_revenue", value(|r| r.positive_revenue)),
    ])?;
    Ok((customers, table))
}
