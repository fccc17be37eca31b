//! Combinations a config allows but that refuse traffic at run time, or expose the proxy:
//! `pacer check` prints them, and `pacer proxy` logs them at start.

use crate::config::Config;

/// One sentence per problem, each with what happens and the fix.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    intercept(config, &mut out);
    if !config.listen.ip().is_loopback() && config.proxy_auth.is_none() {
        out.push(format!(
            "listen: {} is reachable from other machines and there is no proxy_auth: anyone who \
             reaches it can send requests with your tokens' budget; add a proxy_auth section or \
             listen on 127.0.0.1",
            config.listen
        ));
    }
    if let Some(admin) = config.admin.filter(|a| !a.ip().is_loopback()) {
        out.push(format!(
            "admin: {admin} is reachable from other machines, and the admin API has no \
             authentication (PUT /limits changes what the API receives); keep it on 127.0.0.1 \
             unless a network policy guards it"
        ));
    }
    if config.default_upstream.is_none() && config.upstreams.len() > 1 {
        out.push(
            "there are several upstreams and no default_upstream: origin-form requests \
             (http://pacer/api/...) get 403 pacer.upstream.no_default; name one in \
             default_upstream if the load tool uses pacer as its base URL"
                .to_owned(),
        );
    }
    out
}

/// Interception that cannot work: no CA to sign with, or half a CA on disk.
fn intercept(config: &Config, out: &mut Vec<String>) {
    let intercepting: Vec<&str> = config
        .upstreams
        .iter()
        .filter(|u| u.intercept)
        .map(|u| u.name.as_str())
        .collect();
    if intercepting.is_empty() {
        return;
    }
    let Some((files, _)) = super::ca_files(config) else {
        out.push(format!(
            "upstreams {} intercept HTTPS (intercept: true, the default), but there is no \
             intercept section and no state directory for pacer's own CA (PACER_STATE_DIR, \
             XDG_DATA_HOME and HOME are unset): every CONNECT to them gets 403 \
             pacer.connect.intercept_unconfigured; add an intercept section (ca_cert, ca_key) \
             or set intercept: false on them",
            intercepting.join(", ")
        ));
        return;
    };
    let (cert, key) = (&files.ca_cert, &files.ca_key);
    if cert.exists() != key.exists() {
        let (present, missing) = if cert.exists() {
            (cert, key)
        } else {
            (key, cert)
        };
        out.push(format!(
            "{} exists but {} does not: pacer will refuse to start; restore the missing file, \
             or remove the other so a new CA is made",
            present.display(),
            missing.display()
        ));
    }
}
