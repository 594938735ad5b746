//! TLS Secrets (`type: kubernetes.io/tls`): the only Secrets Ferry keeps.

use crate::ObjectKey;
use serde::{Serialize, Serializer};

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TlsSecret {
    pub key: ObjectKey,
    /// `tls.crt`, PEM.
    #[serde(serialize_with = "byte_count")]
    pub cert_pem: Vec<u8>,
    /// `tls.key`, PEM. Never logged nor serialized: only its length is shown.
    #[serde(serialize_with = "byte_count")]
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSecret")
            .field("key", &self.key)
            .field("cert_pem_bytes", &self.cert_pem.len())
            .field("key_pem_bytes", &self.key_pem.len())
            .finish()
    }
}

fn byte_count<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("<{} bytes>", bytes.len()))
}
