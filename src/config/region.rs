//! Genesys Cloud region presets.
//!
//! A region name is the AWS region the Genesys Cloud organisation lives in (the name shown in
//! the Genesys Cloud SDKs' region tables), which is easier to get right than the API host.

/// Region name to API base URL, for every public Genesys Cloud region.
///
/// Kept in the order the Genesys SDKs list them, so the list in an error message reads the
/// way users are used to. `us-east-2` is the FedRAMP (US government) region.
pub const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "https://api.mypurecloud.com"),
    ("eu-west-1", "https://api.mypurecloud.ie"),
    ("ap-southeast-2", "https://api.mypurecloud.com.au"),
    ("ap-northeast-1", "https://api.mypurecloud.jp"),
    ("eu-central-1", "https://api.mypurecloud.de"),
    ("us-west-2", "https://api.usw2.pure.cloud"),
    ("ca-central-1", "https://api.cac1.pure.cloud"),
    ("ap-northeast-2", "https://api.apne2.pure.cloud"),
    ("eu-west-2", "https://api.euw2.pure.cloud"),
    ("ap-south-1", "https://api.aps1.pure.cloud"),
    ("us-east-2", "https://api.use2.us-gov-pure.cloud"),
    ("sa-east-1", "https://api.sae1.pure.cloud"),
    ("me-central-1", "https://api.mec1.pure.cloud"),
    ("ap-northeast-3", "https://api.apne3.pure.cloud"),
    ("eu-central-2", "https://api.euc2.pure.cloud"),
];

/// The API base URL of a region, or None for a name that is not a Genesys Cloud region.
pub fn region_base_url(region: &str) -> Option<&'static str> {
    REGIONS.iter().find(|(r, _)| *r == region).map(|(_, u)| *u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_regions() {
        assert_eq!(
            region_base_url("us-east-1"),
            Some("https://api.mypurecloud.com")
        );
        assert_eq!(
            region_base_url("eu-central-2"),
            Some("https://api.euc2.pure.cloud")
        );
        assert_eq!(
            region_base_url("us-east-2"),
            Some("https://api.use2.us-gov-pure.cloud")
        );
        assert_eq!(region_base_url("us-east-9"), None);
        assert_eq!(region_base_url("US-EAST-1"), None);
    }

    #[test]
    fn every_preset_is_a_bare_https_origin() {
        for (name, base) in REGIONS {
            let url = url::Url::parse(base).unwrap();
            assert_eq!(url.scheme(), "https", "{name}");
            assert_eq!(url.path(), "/", "{name}");
            assert!(url.host_str().unwrap().starts_with("api."), "{name}");
        }
        let mut names: Vec<_> = REGIONS.iter().map(|(n, _)| n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), REGIONS.len(), "a region is listed twice");
    }
}
