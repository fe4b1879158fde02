//! winback-core: pure Rust per-customer kernels of winback, with no Python in them.
//!
//! Each module follows a section of `docs/methods.md`:
//! - [`keys`]: customer key columns (integers, Arrow string views).
//! - [`occasions`]: purchase occasions (docs/methods.md#occasions).
//! - [`partition`]: grouping rows by customer without a global sort (docs/methods.md#scale).
//! - [`ordered`]: integer ids grouped in id order with compact rows, a few partitions at a time
//!   (docs/methods.md#scale).
//! - [`silence`]: silence scoring — gaps, recency Tr, its rank, TrF, S, groups and bands
//!   (docs/methods.md#silence).
//! - [`panel`]: the customer × period panel of the value engine (docs/methods.md#periods, #value).
//! - [`summary`]: per-customer sufficient statistics of the BTYD and period models
//!   (docs/methods.md#summary).
//! - [`customer`]: one customer's silence figures and summary from its rows, without a table
//!   (docs/methods.md#scorer): the in-process scorer's fast path.
//! - [`compress`]: distinct rows of sufficient statistics with counts (docs/methods.md#fitting).
//! - [`hashing`]: stable per-customer hashes for campaign assignment
//!   (docs/methods.md#campaign-hash).
//! - [`parallelism`]: the rayon pools and `WINBACK_NUM_THREADS`.
//! - [`iso`]: naive ISO times of three shapes to µs, the HTTP service's column-wise reading of
//!   JSON bodies (docs/methods.md#as-of).
//!
//! Every kernel is deterministic: each customer is computed independently from its rows in a
//! canonical order, and output rows are sorted by customer key, so the result is identical for any
//! input row order and any thread count.

pub mod compress;
pub mod customer;
pub mod error;
pub mod hashing;
pub mod iso;
pub mod keys;
pub mod occasions;
pub mod ordered;
pub mod panel;
pub mod parallelism;
pub mod partition;
pub mod silence;
pub mod summary;

pub use error::KernelError;
