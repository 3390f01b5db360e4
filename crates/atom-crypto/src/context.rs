use std::fmt;

/// What a sealed value belongs to. The key that seals it is derived from the
/// master key and this context, so a value copied to another row or another
/// name fails to open.
///
/// The encoding is a domain label followed by each component as a 4-byte
/// big-endian length and its UTF-8 bytes, so no two different contexts encode
/// the same: (`ab`, `c`) and (`a`, `bc`) differ.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Context {
    encoded: Vec<u8>,
}

impl Context {
    /// The context of a user's credential for a provider.
    pub fn credential(user_id: &str, provider: &str) -> Context {
        Context::from_parts("credential", &[user_id, provider])
    }

    /// The context of a named value in a secrets file.
    pub fn secret(name: &str) -> Context {
        Context::from_parts("secret", &[name])
    }

    /// The context of `owner`'s wrapped data key (envelope encryption).
    pub fn data_key(owner: &str) -> Context {
        Context::from_parts("data-key", &[owner])
    }

    /// A context of another domain (`domain` names the kind of thing, e.g.
    /// "audit"; `parts` identify the one thing).
    pub fn from_parts(domain: &str, parts: &[&str]) -> Context {
        let mut encoded =
            Vec::with_capacity(8 + domain.len() + parts.iter().map(|p| 4 + p.len()).sum::<usize>());
        push_component(&mut encoded, domain);
        for part in parts {
            push_component(&mut encoded, part);
        }
        Context { encoded }
    }

    /// The bytes given to HKDF as `info` (after the `atom/v1` label).
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

fn push_component(out: &mut Vec<u8>, part: &str) {
    // A component longer than 4 GiB cannot be represented; no user id,
    // provider or secret name comes near that, and saturating keeps the
    // encoding total (such a context simply never matches a shorter one).
    let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part.as_bytes());
}

impl fmt::Debug for Context {
    // Context components are identifiers (user ids, provider and secret
    // names), not secrets; show them for diagnostics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut rest = self.encoded.as_slice();
        while rest.len() >= 4 {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let end = (4 + len).min(rest.len());
            list.entry(&String::from_utf8_lossy(&rest[4..end]));
            rest = &rest[end..];
        }
        list.finish()
    }
}
