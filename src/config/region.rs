//! Genesys Cloud region presets. (Stub: to be completed.)

/// Region name to API base URL.
pub const REGIONS: &[(&str, &str)] = &[("us-east-1", "https://api.mypurecloud.com")];

pub fn region_base_url(region: &str) -> Option<&'static str> {
    REGIONS.iter().find(|(r, _)| *r == region).map(|(_, u)| *u)
}
