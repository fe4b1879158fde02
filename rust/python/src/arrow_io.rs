//! Arrow ↔ slices: extracts the prepared transaction columns and builds the output batch.
//! No math happens here.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringViewArray, UInt32Array,
    UInt8Array,
};
use arrow_buffer::{Buffer, NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema};
use pyo3::prelude::*;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::PyTable;
use winback_core::keys::ViewKeys;
use winback_core::silence::{CustomerIds, CustomerKeys, SilenceTable, STATUS_SCORED};

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
        Ok(match ids {
            CustomerIds::Int(values) => Arc::new(Int64Array::from(values.clone())),
            CustomerIds::View(views) => {
                let buffers = self.customer.as_string_view().data_buffers().to_vec();
                let array =
                    StringViewArray::try_new(ScalarBuffer::from(views.clone()), buffers, None)
                        .map_err(|e| {
                            crate::errors::internal_error(&format!("customer ids: {e}"))
                        })?;
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

/// Reads the prepared table: column 0 customer, 1 ts, 2 (optional) amount.
pub fn transaction_columns(data: AnyRecordBatch) -> PyResult<TransactionColumns> {
    let table = data.into_table()?;
    let (batches, schema) = table.into_inner();
    let batch = arrow_select::concat::concat_batches(&schema, &batches)
        .map_err(|e| input_error(format!("could not combine the input batches: {e}")))?;
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

/// Builds the per-customer batch; gap-based columns are null unless the customer was scored, and
/// the amount columns are null when there was no amount column.
pub fn silence_table(
    table: &SilenceTable,
    customer_ids: ArrayRef,
    has_amount: bool,
) -> PyResult<PyTable> {
    let rows = &table.customers;
    let scored = NullBuffer::from(
        rows.iter()
            .map(|c| c.status == STATUS_SCORED)
            .collect::<Vec<_>>(),
    );
    let amount_valid = (!has_amount).then(|| NullBuffer::new_null(rows.len()));
    let f64_col = |f: fn(&winback_core::silence::CustomerSilence) -> f64,
                   nulls: Option<&NullBuffer>| {
        Arc::new(Float64Array::new(
            rows.iter().map(f).collect(),
            nulls.cloned(),
        )) as ArrayRef
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("customer_id", customer_ids),
        (
            "status",
            Arc::new(UInt8Array::from_iter_values(rows.iter().map(|c| c.status))),
        ),
        (
            "n_occasions",
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|c| c.n_occasions),
            )),
        ),
        (
            "first_ts",
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|c| c.first_us),
            )),
        ),
        (
            "last_ts",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|c| c.last_us))),
        ),
        ("tenure_days", f64_col(|c| c.tenure_days, None)),
        ("recency_days", f64_col(|c| c.recency_days, None)),
        ("max_gap_days", f64_col(|c| c.max_gap_days, Some(&scored))),
        ("mean_gap_days", f64_col(|c| c.mean_gap_days, Some(&scored))),
        (
            "median_gap_days",
            f64_col(|c| c.median_gap_days, Some(&scored)),
        ),
        (
            "recency_rank",
            Arc::new(UInt32Array::new(
                rows.iter().map(|c| c.recency_rank).collect(),
                Some(scored.clone()),
            )),
        ),
        ("rank_ratio", f64_col(|c| c.rank_ratio, Some(&scored))),
        ("silence_score", f64_col(|c| c.silence_score, Some(&scored))),
        (
            "rank_ratio_group",
            Arc::new(UInt8Array::new(
                rows.iter().map(|c| c.group).collect(),
                Some(scored.clone()),
            )),
        ),
        (
            "silence_band",
            Arc::new(UInt8Array::new(
                rows.iter().map(|c| c.band).collect(),
                Some(scored.clone()),
            )),
        ),
        (
            "total_amount",
            f64_col(|c| c.total_amount, amount_valid.as_ref()),
        ),
        (
            "mean_amount",
            f64_col(|c| c.mean_amount, amount_valid.as_ref()),
        ),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| {
            Field::new(
                *name,
                array.data_type().clone(),
                array.null_count() > 0 || array.nulls().is_some(),
            )
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)
        .map_err(|e| crate::errors::internal_error(&format!("building the output table: {e}")))?;
    PyTable::try_new(vec![batch], schema)
}
