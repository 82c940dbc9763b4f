//! The local Trust Security Center's record: the last evaluation the agent received
//! (`<state-dir>/tsc.json`), which `enigm tsc` shows.

use std::path::Path;

pub use crate::core::TscRecord;
use crate::state::{self, TSC_FILE};

/// The last evaluation recorded in the state directory `state_dir`; `None` before the first
/// check-in.
pub fn read(state_dir: &Path) -> anyhow::Result<Option<TscRecord>> {
    state::read_record::<TscRecord>(&state_dir.join(TSC_FILE))
}
