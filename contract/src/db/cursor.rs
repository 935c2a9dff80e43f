use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::DbError;

/// Position after the last item of a page: (created_at in ms, id). Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at_ms: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_at_ms, self.id))
    }

    pub fn decode(s: &str) -> Result<Self, DbError> {
        let bad = || DbError::InvalidQuery("malformed cursor".to_owned());
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (ms, id) = text.split_once(':').ok_or_else(bad)?;
        Ok(Cursor {
            created_at_ms: ms.parse().map_err(|_| bad())?,
            id: id.to_owned(),
        })
    }
}
