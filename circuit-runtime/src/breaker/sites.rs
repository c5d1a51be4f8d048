//! The call sites that cache a breaker, and its retirement: how a
//! registry replacing a name's breaker empties every cache that holds it.

use std::sync::atomic::Ordering;

use super::CircuitBreaker;
use crate::cell::BreakerCell;
use crate::sync::lock_std;

impl CircuitBreaker {
    /// Marks the breaker as no longer the registry's for its name, and
    /// empties every call site cache that holds it.
    pub(crate) fn retire(&self) {
        crate::telemetry::retired(self);
        let mut sites = lock_std(&self.sites);
        sites.retired = true;
        self.retired.store(true, Ordering::Release);
        for cell in sites.cells.drain(..) {
            cell.clear_if(self);
        }
    }

    /// Whether the registry stopped handing this breaker out for its name.
    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Points `cell` at this breaker, unless it was retired. Under the
    /// same lock as [`retire`](Self::retire): a cell is either set before
    /// the retirement, and emptied by it, or not set at all.
    pub(crate) fn cache_in(&'static self, cell: &'static BreakerCell) -> bool {
        let mut sites = lock_std(&self.sites);
        if sites.retired {
            return false;
        }
        cell.set(self);
        if !sites.cells.iter().any(|kept| std::ptr::eq(*kept, cell)) {
            sites.cells.push(cell);
        }
        true
    }
}
