//! Access control end to end, on the real pipeline over real HTTP: what each role is refused on
//! every route, tenants that cannot see each other, revoked keys (in this process, from the
//! command line, and in another process), the embedded S3 endpoint's credentials and presigned
//! URLs, per-key rate limits, the page's sign-in and security headers, and the refusal to serve a
//! network with access control off.

mod common;
#[path = "access/support.rs"]
mod support;

#[path = "access/limits.rs"]
mod limits;
#[path = "access/revocation.rs"]
mod revocation;
#[path = "access/roles.rs"]
mod roles;
#[path = "access/s3.rs"]
mod s3;
#[path = "access/session.rs"]
mod session;
#[path = "access/startup.rs"]
mod startup;
#[path = "access/tenants.rs"]
mod tenants;
