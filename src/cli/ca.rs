//! `pacer ca init|show`, and which CA the proxy uses: the config's `intercept:` section, or
//! else pacer's own CA in its state directory (see [`crate::tls::ca::default_files`]).

use std::path::Path;

use super::{load_config, CaCommand, CliError};
use crate::config::{Config, Intercept};

/// The CA files the proxy signs intercepted HTTPS with, and whether they are pacer's own default
/// rather than the config's. None when no upstream intercepts, or when there is no section and
/// no state directory (CONNECTs to intercepted hosts are then refused, and `pacer check` says so).
pub fn ca_files(config: &Config) -> Option<(Intercept, bool)> {
    if let Some(files) = &config.intercept {
        return Some((files.clone(), false));
    }
    if !config.upstreams.iter().any(|u| u.intercept) {
        return None;
    }
    crate::tls::ca::default_files().map(|files| (files, true))
}

/// Gives the config pacer's own CA when it intercepts without naming one, and says once where
/// that CA is and how a load tool comes to trust it.
pub fn use_default_ca(config: &mut Config, path: &Path) {
    let Some((files, true)) = ca_files(config) else {
        return;
    };
    tracing::info!(
        cert = %files.ca_cert.display(),
        "no intercept section: HTTPS through the proxy is intercepted with pacer's own CA \
         (made on first start); trust its certificate in the load tool: `pacer ca show --config {}` \
         prints it, for curl --cacert or keytool -importcert (README: Making JMeter trust the CA)",
        path.display()
    );
    config.intercept = Some(files);
}

// === impl CaCommand ===

impl CaCommand {
    pub(super) fn run(self) -> Result<(), CliError> {
        let (CaCommand::Init { config: path } | CaCommand::Show { config: path }) = &self;
        let config = load_config(path)?;
        let files = match (config.intercept, crate::tls::ca::default_files()) {
            (Some(files), _) | (None, Some(files)) => files,
            (None, None) => {
                return Err(CliError::Usage(format!(
                    "{} has no intercept section (ca_cert, ca_key), and there is no state \
                     directory for pacer's own CA (set PACER_STATE_DIR, XDG_DATA_HOME or HOME)",
                    path.display()
                )))
            }
        };
        match self {
            CaCommand::Init { .. } => init(&files),
            CaCommand::Show { .. } => show(&files, path),
        }
    }
}

fn init(files: &Intercept) -> Result<(), CliError> {
    let (_, origin) =
        crate::tls::Ca::load_or_create(files).map_err(|e| CliError::Runtime(e.into()))?;
    let what = match origin {
        crate::tls::Origin::Created => "created",
        crate::tls::Origin::Loaded => "already present",
    };
    println!("CA certificate: {} ({what})", files.ca_cert.display());
    println!("CA key:         {}", files.ca_key.display());
    Ok(())
}

/// Prints the certificate only: showing it needs no access to the key (a load-tool container
/// that mounts just the certificate can run it).
fn show(files: &Intercept, config: &Path) -> Result<(), CliError> {
    let pem = std::fs::read_to_string(&files.ca_cert).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CliError::Usage(format!(
            "{} does not exist yet; run `pacer ca init --config {}` first",
            files.ca_cert.display(),
            config.display()
        )),
        _ => CliError::Runtime(anyhow::anyhow!(
            "cannot read {}: {e}",
            files.ca_cert.display()
        )),
    })?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(CliError::Runtime(anyhow::anyhow!(
            "{} holds no PEM certificate",
            files.ca_cert.display()
        )));
    }
    print!("{pem}");
    Ok(())
}
