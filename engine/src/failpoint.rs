//! Named crash points: the crash tests kill a run, a publication or a commit exactly between
//! two of its steps, then check that a retry completes it.
//!
//! Compiled in only with the `failpoints` feature. The workspace's tests turn it on (`duff`
//! lists it on its dev-dependency on this crate, so only test builds get it); release builds
//! leave it out, and there [`hit`] does nothing: no environment variable can abort a run.

/// Aborts the process when the environment variable `DUFF_FAILPOINT` is `name`.
#[inline]
pub fn hit(name: &str) {
    #[cfg(feature = "failpoints")]
    if std::env::var("DUFF_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Whether this build has the crash points.
pub const ENABLED: bool = cfg!(feature = "failpoints");
