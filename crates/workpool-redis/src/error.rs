//! Every error of the crate.

use std::fmt;

/// What went wrong talking to Redis, encoding a job, or running the pool.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Redis refused a command, or the connection failed.
    Redis(redis::RedisError),
    /// A job could not be encoded as JSON, or an entry's JSON could not be
    /// decoded.
    Json(serde_json::Error),
    /// The consumer's pool could not be built.
    Build(workpool::BuildError),
    /// A stream entry that is not a job of this crate (no `job` field).
    NotAJob {
        /// The entry's ID.
        id: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Redis(e) => write!(f, "redis: {e}"),
            Error::Json(e) => write!(f, "job JSON: {e}"),
            Error::Build(e) => write!(f, "pool: {e}"),
            Error::NotAJob { id } => write!(f, "stream entry {id} has no `job` field"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Redis(e) => Some(e),
            Error::Json(e) => Some(e),
            Error::Build(e) => Some(e),
            Error::NotAJob { .. } => None,
        }
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Error::Redis(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e)
    }
}

impl From<workpool::BuildError> for Error {
    fn from(e: workpool::BuildError) -> Self {
        Error::Build(e)
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn not_a_job_says_which_entry() {
        let e = Error::NotAJob { id: "1-0".into() };
        assert_eq!(e.to_string(), "stream entry 1-0 has no `job` field");
    }
}
