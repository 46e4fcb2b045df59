//! Which backend the API Lambda serves reports from, as its environment says:
//! `DUFF_API_BACKEND` is `athena` (the default: Athena over the Glue catalog, see
//! [`AthenaConfig::from_env`](crate::AthenaConfig::from_env)) or `lake` (the embedded engine
//! over the lake's Delta tables in S3, at `DUFF_LAKE`, `s3://bucket/prefix/`).

use duff_s3::S3Url;
use url::Url;

use crate::error::ApiError;

/// The API Lambda's backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendChoice {
    /// Athena, configured by `DUFF_ATHENA_*`.
    Athena,
    /// The embedded engine over the lake in S3.
    Lake {
        /// The lake's bucket.
        bucket: String,
        /// The lake root, `s3://bucket/prefix/`.
        root: Url,
    },
}

impl BackendChoice {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ApiError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From `var`, which gives an environment variable's value.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let config = |message: String| ApiError::Internal(format!("configuration: {message}"));
        match var("DUFF_API_BACKEND").as_deref().unwrap_or("athena") {
            "athena" | "" => Ok(BackendChoice::Athena),
            "lake" => {
                let lake = var("DUFF_LAKE").filter(|l| !l.is_empty()).ok_or_else(|| {
                    config("DUFF_API_BACKEND=lake needs DUFF_LAKE (s3://bucket/prefix/)".into())
                })?;
                let url = match S3Url::parse(&lake) {
                    Some(Ok(url)) => url,
                    Some(Err(e)) => return Err(config(e.to_string())),
                    None => return Err(config(format!("DUFF_LAKE={lake:?} is not an s3:// URL"))),
                };
                let root = url.directory_url().map_err(|e| config(e.to_string()))?;
                Ok(BackendChoice::Lake {
                    bucket: url.bucket,
                    root,
                })
            }
            other => Err(config(format!(
                "DUFF_API_BACKEND={other:?}: expected athena or lake"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(vars: &[(&str, &str)]) -> Result<BackendChoice, ApiError> {
        BackendChoice::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn athena_unless_the_lake_is_asked_for() {
        assert_eq!(choice(&[]).unwrap(), BackendChoice::Athena);
        assert_eq!(
            choice(&[("DUFF_API_BACKEND", "athena"), ("DUFF_LAKE", "s3://l/")]).unwrap(),
            BackendChoice::Athena
        );
        assert_eq!(
            choice(&[
                ("DUFF_API_BACKEND", "lake"),
                ("DUFF_LAKE", "s3://lake-bucket")
            ])
            .unwrap(),
            BackendChoice::Lake {
                bucket: "lake-bucket".into(),
                root: Url::parse("s3://lake-bucket/").unwrap(),
            }
        );
        assert_eq!(
            choice(&[
                ("DUFF_API_BACKEND", "lake"),
                ("DUFF_LAKE", "s3://b/team/lake")
            ])
            .unwrap(),
            BackendChoice::Lake {
                bucket: "b".into(),
                root: Url::parse("s3://b/team/lake/").unwrap(),
            }
        );
    }

    #[test]
    fn a_lake_backend_without_an_s3_lake_or_an_unknown_backend_is_refused() {
        for (vars, says) in [
            (&[("DUFF_API_BACKEND", "lake")][..], "needs DUFF_LAKE"),
            (
                &[("DUFF_API_BACKEND", "lake"), ("DUFF_LAKE", "/srv/lake")],
                "not an s3:// URL",
            ),
            (
                &[("DUFF_API_BACKEND", "lake"), ("DUFF_LAKE", "s3:///x")],
                "no bucket",
            ),
            (&[("DUFF_API_BACKEND", "duckdb")], "expected athena or lake"),
        ] {
            let e = choice(vars).unwrap_err().to_string();
            assert!(e.contains(says), "{vars:?}: {e}");
        }
    }
}
