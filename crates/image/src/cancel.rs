//! Stopping a long store operation (a load, an import, a pull) from outside it:
//! the API cancels one whose client went away, so a gzip bomb does not go
//! on unpacking for nobody.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared between an operation, which looks at it as it writes, and
/// whoever may cancel it.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// A guard that cancels when it drops: held by a request handler, whose
    /// future a closed connection drops.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// See [`Cancel::on_drop`].
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
