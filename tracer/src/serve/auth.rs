//! `basic_auth_users`: HTTP basic credentials checked against bcrypt
//! hashes, as exporter-toolkit checks them: the password by bcrypt's own
//! constant-time comparison, run for an unknown user too (against a
//! configured hash, so a wrong name takes as long as a wrong password),
//! one bcrypt at a time off the endpoint's thread, and the credentials
//! let in remembered by a digest (a scrape a second must not cost a
//! bcrypt each, nor wait behind a client that sends wrong passwords).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
};

use base64::Engine as _;
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

use crate::report::metrics::WebFigures;

/// The weakest bcrypt cost accepted: Go's `bcrypt.DefaultCost`, the cost
/// Prometheus's documentation generates hashes with (`htpasswd -nBC 10`).
/// Apache's `htpasswd -B` defaults to 5, 32 times cheaper to guess.
pub const MIN_BCRYPT_COST: u32 = 10;

/// Credentials let in remembered at most (then forgotten all at once).
const CACHE: usize = 100;

pub struct Users(Vec<User>);

struct User {
    /// SHA-256 of the name: compared in constant time, whatever its length.
    name: [u8; 32],
    hash: String,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        // Each part's length first: ("ab", "c") and ("a", "bc") differ.
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part);
    }
    let mut digest = [0; 32];
    digest.copy_from_slice(context.finish().as_ref());
    digest
}

impl Users {
    /// Every hash must be bcrypt of cost [`MIN_BCRYPT_COST`] or more. The
    /// errors never quote a hash (nor a password put there by mistake).
    pub fn new(users: BTreeMap<String, String>) -> Result<Self, String> {
        let mut checked = Vec::new();
        for (name, hash) in users {
            let parts: bcrypt::HashParts = hash.parse().map_err(|_| {
                format!(
                    "basic_auth_users: {name}: not a bcrypt hash (make one with \
                     `htpasswd -nBC {MIN_BCRYPT_COST} {name}`)"
                )
            })?;
            if parts.get_cost() < MIN_BCRYPT_COST {
                return Err(format!(
                    "basic_auth_users: {name}: bcrypt cost {} is too weak (at least \
                     {MIN_BCRYPT_COST}: `htpasswd -nBC {MIN_BCRYPT_COST} {name}`)",
                    parts.get_cost()
                ));
            }
            checked.push(User {
                name: sha256(&[name.as_bytes()]),
                hash,
            });
        }
        Ok(Self(checked))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The hash `name`'s password is checked against, and whether it is
    /// that user's (an unknown name is checked against the first user's).
    fn hash_for(&self, name: &str) -> (&str, bool) {
        let digest = sha256(&[name.as_bytes()]);
        let mut found = None;
        for user in &self.0 {
            let same: bool = user.name.ct_eq(&digest).into();
            if same && found.is_none() {
                found = Some(user);
            }
        }
        match found {
            Some(user) => (&user.hash, true),
            None => (&self.0[0].hash, false),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// No `Authorization` header.
    NoCredentials,
    /// Not basic credentials, an unknown user or a wrong password.
    Wrong,
}

/// The credentials of a request head: `None` without an `Authorization`
/// header, `Some(None)` when it is not basic credentials.
fn credentials(head: &str) -> Option<Option<(String, String)>> {
    let value = head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("authorization")
            .then(|| value.trim())
    })?;
    let basic = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|text| {
            let (user, password) = text.split_once(':')?;
            Some((user.to_owned(), password.to_owned()))
        });
    Some(basic)
}

/// Checks requests' credentials; kept across reloads of the config (a
/// changed hash is a new cache key).
pub struct Checker {
    cache: Mutex<HashMap<[u8; 32], bool>>,
    /// One bcrypt at a time: wrong passwords sent in a loop cost one CPU.
    bcrypt: Semaphore,
}

impl Default for Checker {
    fn default() -> Self {
        Self {
            cache: Mutex::new(HashMap::new()),
            bcrypt: Semaphore::new(1),
        }
    }
}

impl Checker {
    pub async fn check(&self, users: &Users, head: &str) -> Verdict {
        let Some(credentials) = credentials(head) else {
            return Verdict::NoCredentials;
        };
        let Some((user, password)) = credentials else {
            return Verdict::Wrong;
        };
        let (hash, known) = users.hash_for(&user);
        let key = sha256(&[user.as_bytes(), hash.as_bytes(), password.as_bytes()]);
        let cached = self.cache.lock().ok().and_then(|c| c.get(&key).copied());
        let matches = match cached {
            Some(matches) => matches,
            None => {
                let Ok(_one) = self.bcrypt.acquire().await else {
                    return Verdict::Wrong;
                };
                let hash = hash.to_owned();
                let matches = tokio::task::spawn_blocking(move || {
                    bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false);
                // Only what let a client in: wrong passwords sent in a loop
                // must not push the scraper's entry out.
                if matches
                    && known
                    && let Ok(mut cache) = self.cache.lock()
                {
                    if cache.len() >= CACHE {
                        cache.clear();
                    }
                    cache.insert(key, matches);
                }
                matches
            }
        };
        if matches && known {
            Verdict::Allowed
        } else {
            Verdict::Wrong
        }
    }
}

/// What the endpoint counts for `/metrics` and the report ([`WebStats::figures`]).
#[derive(Debug, Default)]
pub struct WebStats {
    pub no_credentials: AtomicU64,
    pub wrong_credentials: AtomicU64,
    /// TLS handshakes that failed (plain HTTP to the TLS port, a client
    /// certificate refused, no common version or cipher).
    pub tls_failures: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    /// The serving certificate's end of validity (Unix seconds; 0: no TLS).
    pub cert_not_after: AtomicI64,
}

impl WebStats {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The counters now, as `/metrics` and the report say them.
    pub fn figures(&self) -> WebFigures {
        WebFigures {
            no_credentials: Self::get(&self.no_credentials),
            wrong_credentials: Self::get(&self.wrong_credentials),
            tls_failures: Self::get(&self.tls_failures),
            reloads: Self::get(&self.reloads),
            reload_failures: Self::get(&self.reload_failures),
            cert_not_after: self.cert_not_after(),
        }
    }

    /// The serving certificate's end of validity (Unix seconds), if TLS.
    pub fn set_cert(&self, not_after: Option<i64>) {
        self.cert_not_after
            .store(not_after.unwrap_or(0), Ordering::Relaxed);
    }

    /// The serving certificate's end of validity, when TLS is on.
    pub fn cert_not_after(&self) -> Option<i64> {
        Some(self.cert_not_after.load(Ordering::Relaxed)).filter(|&t| t != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(authorization: Option<&str>) -> String {
        match authorization {
            Some(value) => format!("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: {value}\r\n\r\n"),
            None => "GET / HTTP/1.1\r\nHost: x\r\n\r\n".into(),
        }
    }

    fn basic(user_password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_password)
        )
    }

    #[test]
    fn credentials_of_a_head() {
        assert_eq!(credentials(&head(None)), None);
        assert_eq!(
            credentials(&head(Some(&basic("alice:pa:ss")))),
            Some(Some(("alice".into(), "pa:ss".into())))
        );
        assert_eq!(
            credentials("GET / HTTP/1.1\r\nauthorization:  basic YTpi\r\n\r\n"),
            Some(Some(("a".into(), "b".into())))
        );
        assert_eq!(credentials(&head(Some("Bearer abc"))), Some(None));
        assert_eq!(credentials(&head(Some("Basic !!!"))), Some(None));
        assert_eq!(credentials(&head(Some(&basic("no-colon")))), Some(None));
    }

    #[tokio::test]
    async fn right_wrong_and_unknown() {
        let users = Users::new(BTreeMap::from([
            ("alice".to_owned(), bcrypt::hash("secret", 10).unwrap()),
            ("bob".to_owned(), bcrypt::hash("other", 10).unwrap()),
        ]))
        .unwrap();
        let checker = Checker::default();
        let check = |auth: Option<String>| {
            let head = head(auth.as_deref());
            let (checker, users) = (&checker, &users);
            async move { checker.check(users, &head).await }
        };
        assert_eq!(check(None).await, Verdict::NoCredentials);
        assert_eq!(check(Some(basic("alice:secret"))).await, Verdict::Allowed);
        // Remembered: the same answer again.
        assert_eq!(check(Some(basic("alice:secret"))).await, Verdict::Allowed);
        assert_eq!(check(Some(basic("bob:other"))).await, Verdict::Allowed);
        assert_eq!(check(Some(basic("alice:other"))).await, Verdict::Wrong);
        assert_eq!(check(Some(basic("bob:secret"))).await, Verdict::Wrong);
        // An unknown user with the first user's password is still refused.
        assert_eq!(check(Some(basic("carol:secret"))).await, Verdict::Wrong);
        assert_eq!(check(Some(basic("alice:"))).await, Verdict::Wrong);
        assert_eq!(check(Some("Bearer x".into())).await, Verdict::Wrong);
        // Only alice's and bob's credentials are remembered.
        assert_eq!(checker.cache.lock().unwrap().len(), 2);
    }
}
