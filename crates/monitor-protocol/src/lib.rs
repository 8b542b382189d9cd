//! The contract between the daemon and the monitors it starts, one per
//! running container or exec (see the `keel-monitor` crate):
//!
//! - [`message`]: the typed, versioned messages on the monitor's stdin and
//!   stdout, from the launch to the exit;
//! - [`stream`]: the frames on the monitor's attach socket;
//! - [`files`]: what a monitor leaves in the container's directory (the
//!   json-file log and its rotations, the exit record), which the daemon
//!   reads.
//!
//! Small on purpose: the monitor links it, and one monitor runs per
//! container.

pub mod files;
pub mod message;
pub mod stream;
