//! For authors of an integration with another web framework: the two
//! calls a middleware makes around each request, and the plain values they
//! take and give. The axum and actix-web integrations are built on exactly
//! these; an application never needs them.
//!
//! ```
//! use jwe_session::adapter::{self, Admission, RequestHead};
//! use jwe_session::revocation::MemoryStore;
//! use jwe_session::{Key, KeyAlgorithm, Keyring, SessionLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), jwe_session::Error> {
//! let layer = SessionLayer::new(Keyring::new(Key::generate(KeyAlgorithm::A256Kw)?), MemoryStore::new())?;
//! let request = RequestHead { method: "GET", host: Some("example.com"), ..RequestHead::default() };
//! let Admission::Proceed(active) = adapter::begin(&layer, &request).await else {
//!     unreachable!("a GET without cookies is never refused");
//! };
//! // The handler runs with this handle.
//! active.handle::<jwe_session::SessionMap>().insert("seen", true)?;
//! let response = adapter::finish(&layer, active).await;
//! assert_eq!(response.set_cookies.len(), 1);
//! assert!(response.no_store);
//! # Ok(())
//! # }
//! ```

pub use crate::integration::{ActiveRequest, Admission, RequestHead, ResponseHead};
use crate::SessionLayer;

/// Reads the request: the CSRF check, then the session from its cookies.
/// An invalid, expired or revoked cookie gives a new empty session (with a
/// removal cookie on the response, except for a revoked one, which a newer
/// cookie may already have replaced); a revocation store that is down
/// refuses the request with 503.
pub async fn begin(layer: &SessionLayer, request: &RequestHead<'_>) -> Admission {
    layer.begin(request).await
}

/// Ends the request: seals the session again only when needed, records
/// revocations, and says which cookies to write and whether the response
/// is replaced.
pub async fn finish(layer: &SessionLayer, request: ActiveRequest) -> ResponseHead {
    layer.finish(request).await
}
