//! Rebuild when migrations change, so `sqlx::migrate!` embeds new files; and
//! stamp the version `--version` prints with the commit and build date
//! (`SOURCE_DATE_EPOCH` is honoured, for reproducible builds).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown commit".into());
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg(match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(epoch) => format!("--date=@{epoch}"),
            Err(_) => "--date=now".into(),
        })
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown date".into());
    println!(
        "cargo:rustc-env=DTSWATCH_VERSION={} ({commit}, built {date})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
    let revision = if commit.contains(' ') {
        "unknown"
    } else {
        commit.as_str()
    };
    println!("cargo:rustc-env=DTSWATCH_REVISION={revision}");
}
