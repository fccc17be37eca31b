//! Raw YAML structs to validated config. (Stub: to be completed.)
use std::path::Path;

use super::raw::RawConfig;
use super::{Config, ConfigErrors};

pub fn validate(_raw: RawConfig, _base: &Path) -> Result<Config, ConfigErrors> {
    todo!()
}
