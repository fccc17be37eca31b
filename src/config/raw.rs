//! The YAML as written. (Stub: to be completed.)
use super::ConfigErrors;

pub struct RawConfig;

pub fn parse(_text: &str) -> Result<RawConfig, ConfigErrors> {
    Ok(RawConfig)
}
