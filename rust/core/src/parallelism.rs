//! The one place that owns rayon thread pools.
//!
//! A call runs on the global pool unless it asks for a thread count, or `WINBACK_NUM_THREADS` is
//! set; pools of an explicit size are built once and kept. Results never depend on the count: the
//! kernels split work into fixed-size pieces and combine them in a fixed order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::KernelError;

/// Environment variable that fixes the default number of worker threads.
pub const NUM_THREADS_ENV: &str = "WINBACK_NUM_THREADS";

fn pools() -> &'static Mutex<HashMap<usize, Arc<rayon::ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The thread count requested by the caller or by `WINBACK_NUM_THREADS`, if any.
fn requested_threads(threads: Option<usize>) -> Option<usize> {
    threads.or_else(|| {
        std::env::var(NUM_THREADS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
    })
}

/// Runs `work` on a pool of `threads` workers (or the default pool when `None`).
pub fn install<R: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> R + Send,
) -> Result<R, KernelError> {
    let Some(count) = requested_threads(threads) else {
        return Ok(work());
    };
    if count == 0 {
        return Err(KernelError::InvalidParameter {
            name: "num_threads",
            reason: "must be at least 1".into(),
        });
    }
    let pool = {
        let mut guard = pools()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pool) = guard.get(&count) {
            Arc::clone(pool)
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(count)
                .thread_name(|i| format!("winback-{i}"))
                .build()
                .map_err(|e| KernelError::ThreadPool {
                    threads: count,
                    reason: e.to_string(),
                })?;
            let pool = Arc::new(pool);
            guard.insert(count, Arc::clone(&pool));
            pool
        }
    };
    Ok(pool.install(work))
}

/// Number of threads the next call with `threads` would use.
pub fn effective_threads(threads: Option<usize>) -> usize {
    requested_threads(threads).unwrap_or_else(rayon::current_num_threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_pool_has_requested_size() {
        let seen = install(Some(3), rayon::current_num_threads).unwrap();
        assert_eq!(seen, 3);
    }

    #[test]
    fn zero_threads_is_an_error_not_a_panic() {
        assert!(install(Some(0), || ()).is_err());
    }
}
