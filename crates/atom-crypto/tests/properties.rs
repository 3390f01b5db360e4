//! Properties over arbitrary plaintexts, contexts and bit flips.

use atom_crypto::{Context, ExposeSecret, Keyring};
use proptest::prelude::*;

use crate::common::{keyring, test_key};

fn context() -> impl Strategy<Value = (String, String)> {
    (any::<String>(), any::<String>())
}

fn plaintext() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<String>(),
        // Large values, not only the short strings `any` favours.
        proptest::collection::vec(any::<char>(), 1000..20_000)
            .prop_map(|cs| cs.into_iter().collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_then_open_returns_the_plaintext(pt in plaintext(), (user, provider) in context()) {
        let ring = keyring(1);
        let ctx = Context::credential(&user, &provider);
        let sealed = ring.seal(&ctx, &pt);
        let opened = ring.open(&ctx, sealed.as_str()).unwrap();
        prop_assert_eq!(opened.expose_secret(), pt.as_str());
    }

    #[test]
    fn any_single_bit_flip_fails(pt in any::<String>(), bit in any::<prop::sample::Index>()) {
        let ring = keyring(1);
        let ctx = Context::secret("name");
        let sealed = ring.seal(&ctx, &pt);
        let mut bytes = sealed.as_str().as_bytes().to_vec();
        let i = bit.index(bytes.len() * 8);
        bytes[i / 8] ^= 1 << (i % 8);
        // A flip may leave invalid UTF-8, which cannot even be offered.
        if let Ok(flipped) = String::from_utf8(bytes) {
            prop_assert!(ring.open(&ctx, &flipped).is_err());
        }
    }

    #[test]
    fn sealed_for_one_context_never_opens_under_another(
        pt in any::<String>(), a in context(), b in context()
    ) {
        prop_assume!(a != b);
        let ring = keyring(1);
        let sealed = ring.seal(&Context::credential(&a.0, &a.1), &pt);
        prop_assert!(ring.open(&Context::credential(&b.0, &b.1), sealed.as_str()).is_err());
    }

    #[test]
    fn rotation_keeps_the_plaintext(pt in plaintext(), name in any::<String>(), seed in 2u8..200) {
        let old = keyring(1);
        let ctx = Context::secret(&name);
        let before = [old.seal(&ctx, &pt), old.seal_legacy(&pt)];
        let rotated = old.promote(test_key(seed)).unwrap();
        for v in &before {
            let re = rotated.rewrap(&ctx, v.as_str(), false).unwrap().unwrap();
            prop_assert_eq!(re.key_id(), Some(rotated.primary_id()));
            let retired = rotated.retire(old.primary_id()).unwrap();
            let opened = retired.open(&ctx, re.as_str()).unwrap();
            prop_assert_eq!(opened.expose_secret(), pt.as_str());
        }
        prop_assert!(Keyring::new(test_key(seed), []).is_ok());
    }
}
