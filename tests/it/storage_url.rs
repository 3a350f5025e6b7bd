//! `storage.url` as an operator writes it: TLS checked per libpq's
//! parameters (`sslmode`, `sslrootcert`) against a real PostgreSQL serving
//! a certificate made for the test, the password given through `${VAR}`
//! and never shown, and the commands reading the shared database.

use crate::helpers::{TestConfig, run_cli, run_cli_with};
use crate::pg::PgServer;

/// A config of one job on the shared database at `url` (no daemon needed).
fn config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    TestConfig::offline()
        .postgres(url)
        .job("dtsnever")
        .write(dir)
}

#[test]
fn tls_is_verified_against_the_configured_root_and_the_password_never_shows() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let Some(server) = PgServer::start_tls(
        &certified.cert.pem(),
        &certified.signing_key.serialize_pem(),
    ) else {
        return;
    };
    server.database("tls");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("db-ca.pem");
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let wrong_ca = dir.path().join("other-ca.pem");
    std::fs::write(&wrong_ca, other.cert.pem()).unwrap();
    let port = server.port;

    // Verified against the right root: `once` creates the schema (no job
    // answers), `status` reads it.
    let verified = format!(
        "postgres://dtswatch:${{DTSWATCH_DB_PASSWORD}}@127.0.0.1:{port}/tls?sslmode=verify-full&sslrootcert={}",
        ca.display()
    );
    let good = config(dir.path(), &verified);
    let password = [("DTSWATCH_DB_PASSWORD", "s3cret-not-checked-by-trust")];
    let once = run_cli_with(&good, &["once"], &password);
    assert!(
        once.stderr.contains("dtsnever"),
        "once ran against the database: {}",
        once.stderr
    );
    let status = run_cli_with(&good, &["status"], &password);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("dtsnever"), "{}", status.stdout);

    // Another root: refused, saying why, without the password.
    let wrong = config(
        dir.path(),
        &format!(
            "postgres://dtswatch:${{DTSWATCH_DB_PASSWORD}}@127.0.0.1:{port}/tls?sslmode=verify-full&sslrootcert={}",
            wrong_ca.display()
        ),
    );
    let refused = run_cli_with(&wrong, &["status"], &password);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("postgres://dtswatch:***@127.0.0.1"),
        "the database is named, password hidden: {}",
        refused.stderr
    );
    assert_eq!(
        refused.stderr.matches("invalid peer certificate").count(),
        1,
        "says once that the certificate is the problem: {}",
        refused.stderr
    );
    for output in [&once, &status, &refused] {
        assert!(
            !output.stderr.contains("s3cret") && !output.stdout.contains("s3cret"),
            "{}{}",
            output.stdout,
            output.stderr
        );
    }
}

#[test]
fn sslmode_require_refuses_a_server_without_tls() {
    let Some(server) = PgServer::start() else {
        return;
    };
    server.database("plain");
    let dir = tempfile::tempdir().unwrap();
    let required = config(
        dir.path(),
        &format!("{}?sslmode=require", server.url("plain")),
    );
    let refused = run_cli(&required, &["once"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("postgres://dtswatch@127.0.0.1"),
        "{}",
        refused.stderr
    );
    // The same database without the requirement opens.
    let plain = config(dir.path(), &server.url("plain"));
    let once = run_cli(&plain, &["once"]);
    assert!(once.stderr.contains("dtsnever"), "{}", once.stderr);
}
