//! Typed ids: a deployment's id is not a replica's, and the compiler says so where the API's
//! requests and views carry them. On the wire each is its number (`serde(transparent)`), and
//! it prints as its number, so JSON and messages are what they were.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                $name(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        /// Stored as its number (feature `sqlite`, for the store).
        #[cfg(feature = "sqlite")]
        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }

        #[cfg(feature = "sqlite")]
        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(value).map($name)
            }
        }
    };
}

typed_id!(
    /// A deployment, and the release it introduced (a release's id is its deployment's).
    DeploymentId
);
typed_id!(
    /// A replica (`web-3` is replica 3 of `web`).
    ReplicaId
);
typed_id!(
    /// A backup taken by a deployment.
    BackupId
);
typed_id!(
    /// A stored baseline.
    BaselineId
);
typed_id!(
    /// One run of a scheduled checklist.
    CheckRunId
);
typed_id!(
    /// One run of a hook command.
    HookRunId
);

impl DeploymentId {
    /// No deployment: an action outside any (a node restart, a service removal), which is only
    /// logged.
    pub const NONE: DeploymentId = DeploymentId(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_number_on_the_wire_and_in_messages() {
        assert_eq!(serde_json::to_string(&DeploymentId(12)).unwrap(), "12");
        assert_eq!(
            serde_json::from_str::<ReplicaId>("3").unwrap(),
            ReplicaId(3)
        );
        assert_eq!(format!("#{}", BackupId(7)), "#7");
        assert!(serde_json::from_str::<DeploymentId>("\"12\"").is_err());
    }
}
