//! The host's connection registry, kept beside the states (one JSON document), so that a CLI or a
//! host using this store remembers which keys proved read-only (R8, R9) as the file store does.

use oncall_core::{ConnectionRegistry, Error};
use serde_json::Value;

use super::{db_message, PostgresStateStore};

impl PostgresStateStore {
    /// The connection registry (empty until first updated).
    pub async fn load_connections(&self) -> Result<ConnectionRegistry, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT registry FROM {}.connection_registry",
                    self.sql.quoted
                ),
                &[],
            )
            .await
            .map_err(|e| self.db_error("loading the connection registry", e))?;
        match row {
            None => Ok(ConnectionRegistry::new()),
            Some(row) => self.registry_of(row.try_get(0)),
        }
    }

    /// Changes the connection registry in one transaction (no other update runs meanwhile) and
    /// saves it.
    pub async fn update_connections(
        &self,
        change: impl FnOnce(&mut ConnectionRegistry) + Send,
    ) -> Result<(), Error> {
        let table = format!("{}.connection_registry", self.sql.quoted);
        let fail = |e: tokio_postgres::Error| Error::Transient {
            message: format!("updating {table}: {}", db_message(&e)),
        };
        let empty = to_json(&ConnectionRegistry::new())?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute(
            &format!("INSERT INTO {table} (registry) VALUES ($1) ON CONFLICT (id) DO NOTHING"),
            &[&empty],
        )
        .await
        .map_err(|e| self.db_error("creating the connection registry", e))?;
        let row = tx
            .query_one(&format!("SELECT registry FROM {table} FOR UPDATE"), &[])
            .await
            .map_err(fail)?;
        let mut registry = self.registry_of(row.try_get(0))?;
        change(&mut registry);
        tx.execute(
            &format!("UPDATE {table} SET registry = $1, updated_at = now()"),
            &[&to_json(&registry)?],
        )
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    fn registry_of(
        &self,
        json: Result<Value, tokio_postgres::Error>,
    ) -> Result<ConnectionRegistry, Error> {
        let corrupt = |why: String| Error::CorruptState {
            message: format!(
                "the connection registry in {}.connection_registry: {why}",
                self.schema()
            ),
        };
        let json = json.map_err(|e| corrupt(e.to_string()))?;
        serde_json::from_value(json).map_err(|e| corrupt(format!("not a registry: {e}")))
    }
}

fn to_json(registry: &ConnectionRegistry) -> Result<Value, Error> {
    serde_json::to_value(registry).map_err(|e| Error::InvalidResponse {
        message: format!("the connection registry does not serialise: {e}"),
    })
}
