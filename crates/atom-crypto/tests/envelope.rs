//! Envelope encryption: data keys wrapped under the master keyring, values
//! sealed under a data key (`atom:v2`), master-key rotation that rewraps
//! only the data keys, and what destroying a data key does.

use atom_crypto::{
    Classification, Context, CryptoError, DataKey, ExposeSecret as _, Keyring, classify,
    enveloped_key_id,
};

use crate::common::{clock_at, keyring, test_key};

fn github(user: &str) -> Context {
    Context::credential(user, "github")
}

#[test]
fn a_value_sealed_under_a_data_key_opens_with_it_and_names_it() {
    let ring = keyring(1);
    let data_key = DataKey::generate().unwrap();
    let stored = ring.seal_enveloped(&data_key, &github("alice"), "gho_alice");
    assert!(stored.starts_with(&format!("atom:v2:{}:gAAAAA", data_key.id())));
    assert_eq!(enveloped_key_id(&stored).unwrap(), Some(data_key.id()));
    let opened = ring
        .open_enveloped(&data_key, &github("alice"), &stored)
        .unwrap();
    assert_eq!(opened.expose_secret(), "gho_alice");
    // Two seals of one value differ (Fernet's random IV).
    assert_ne!(
        stored,
        ring.seal_enveloped(&data_key, &github("alice"), "gho_alice")
    );
    // Not another form's: the v1 classifier refuses it as malformed, with
    // a message saying what it is, and a master key alone does not open it.
    let err = classify(&stored).unwrap_err();
    assert!(err.to_string().contains("data key"), "{err}");
    assert!(ring.open(&github("alice"), &stored).is_err());
    assert_eq!(
        enveloped_key_id(ring.seal(&github("a"), "x").as_str()).unwrap(),
        None
    );
    // The data key is never shown.
    let shown = format!("{data_key:?}");
    assert!(
        shown.contains(&data_key.id().to_string()) && !shown.contains("bytes"),
        "{shown}"
    );
}

#[test]
fn context_binding_holds_for_values_and_for_wrapped_keys() {
    let ring = keyring(2);
    let alice_key = DataKey::generate().unwrap();
    let bob_key = DataKey::generate().unwrap();
    let stored = ring.seal_enveloped(&alice_key, &github("alice"), "gho_alice");
    // Copied to another user's or provider's row: does not authenticate.
    for other in [github("bob"), Context::credential("alice", "gitlab")] {
        assert!(matches!(
            ring.open_enveloped(&alice_key, &other, &stored),
            Err(CryptoError::AuthenticationFailed { .. })
        ));
    }
    // Opened with another user's data key: names the key it needs.
    assert!(matches!(
        ring.open_enveloped(&bob_key, &github("alice"), &stored),
        Err(CryptoError::UnknownKeyId { id }) if id == alice_key.id()
    ));
    // Alice's wrapped key put in Bob's row does not unwrap for Bob.
    let wrapped = ring.wrap_data_key("alice", &alice_key);
    assert!(matches!(
        ring.unwrap_data_key("bob", alice_key.id(), wrapped.as_str()),
        Err(CryptoError::AuthenticationFailed { .. })
    ));
    // A row whose key id column was changed is refused.
    let err = ring
        .unwrap_data_key("alice", bob_key.id(), wrapped.as_str())
        .unwrap_err();
    assert!(
        err.to_string().contains("not the key its id names"),
        "{err}"
    );
    let unwrapped = ring
        .unwrap_data_key("alice", alice_key.id(), wrapped.as_str())
        .unwrap();
    assert_eq!(unwrapped.id(), alice_key.id());
    assert_eq!(
        ring.open_enveloped(&unwrapped, &github("alice"), &stored)
            .unwrap()
            .expose_secret(),
        "gho_alice"
    );
}

#[test]
fn damaged_enveloped_values_are_errors_never_plaintext() {
    let ring = keyring(3);
    let data_key = DataKey::generate().unwrap();
    let stored = ring.seal_enveloped(&data_key, &github("carol"), "gho_carol");
    let token_at = stored.rfind(':').unwrap() + 1;
    let mut flipped = stored.clone().into_bytes();
    flipped[token_at + 40] = if flipped[token_at + 40] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(matches!(
        ring.open_enveloped(&data_key, &github("carol"), &flipped),
        Err(CryptoError::AuthenticationFailed { .. })
    ));
    for broken in [
        "atom:v2:".to_owned(),
        format!("atom:v2:{}", data_key.id()),
        format!("atom:v2:{}:not-a-token", data_key.id()),
        format!("atom:v2:XYZ:{}", &stored[token_at..]),
        stored[..stored.len() - 5].to_owned(),
    ] {
        assert!(
            matches!(enveloped_key_id(&broken), Err(CryptoError::Malformed(_))),
            "{broken}"
        );
        assert!(
            ring.open_enveloped(&data_key, &github("carol"), &broken)
                .is_err()
        );
        assert!(matches!(classify(&broken), Err(CryptoError::Malformed(_))));
    }
    assert!(matches!(
        classify("gho_plain"),
        Ok(Classification::Plaintext)
    ));
}

/// Rotating the master key touches one wrapped key per owner; the values
/// sealed under the data keys stay byte for byte as they are, and open
/// once the old master key is retired.
#[test]
fn master_key_rotation_rewraps_data_keys_only() {
    let old = keyring(4);
    let owners: Vec<String> = (0..50).map(|i| format!("user-{i}")).collect();
    let mut rows = Vec::new();
    let mut wrapped = Vec::new();
    for owner in &owners {
        let data_key = DataKey::generate().unwrap();
        wrapped.push((
            owner.clone(),
            data_key.id(),
            old.wrap_data_key(owner, &data_key).into_string(),
        ));
        for provider in ["github", "slack", "google"] {
            let ctx = Context::credential(owner, provider);
            rows.push((
                owner.clone(),
                provider,
                old.seal_enveloped(&data_key, &ctx, &format!("{owner}/{provider}")),
            ));
        }
    }
    let rotated = old.promote(test_key(40)).unwrap();
    let rewrapped: Vec<(String, _, String)> = wrapped
        .iter()
        .map(|(owner, id, w)| {
            let new = rotated
                .rewrap(&Context::data_key(owner), w, false)
                .unwrap()
                .expect("under the old primary, so rewrapped");
            (owner.clone(), *id, new.into_string())
        })
        .collect();
    let retired = rotated.retire(old.primary_id()).unwrap();
    for (owner, id, w) in &rewrapped {
        assert!(w.starts_with(&format!("atom:v1:{}:", retired.primary_id())));
        let data_key = retired.unwrap_data_key(owner, *id, w).unwrap();
        for (row_owner, provider, stored) in rows.iter().filter(|r| &r.0 == owner) {
            let ctx = Context::credential(row_owner, provider);
            let opened = retired.open_enveloped(&data_key, &ctx, stored).unwrap();
            assert_eq!(opened.expose_secret(), &format!("{owner}/{provider}"));
        }
    }
    // A wrapped key from before the rotation (a backup) needs the retired key.
    let (owner, id, w) = &wrapped[0];
    assert!(matches!(
        retired.unwrap_data_key(owner, *id, w),
        Err(CryptoError::UnknownKeyId { .. })
    ));
}

/// Crypto-shredding at the crypto layer: without the owner's wrapped data
/// key, no key of the keyring, old or new, opens the owner's values; a new
/// data key for the same owner does not either.
#[test]
fn without_its_data_key_a_value_opens_with_nothing() {
    let ring = Keyring::new(test_key(5), [test_key(6)]).unwrap();
    let data_key = DataKey::generate().unwrap();
    let stored = ring.seal_enveloped(&data_key, &github("dave"), "gho_dave");
    drop(data_key);
    let replacement = DataKey::generate().unwrap();
    assert!(
        ring.open_enveloped(&replacement, &github("dave"), &stored)
            .is_err()
    );
    assert!(ring.open(&github("dave"), &stored).is_err());
}

/// Re-sealing: v1 and legacy values upgrade to v2; one owner's values move
/// to a new data key (suspected compromise of that key); values already
/// under the key are proven to open and left alone.
#[test]
fn values_upgrade_to_v2_and_move_to_a_new_data_key() {
    let ring = keyring(7);
    let first = DataKey::generate().unwrap();
    let second = DataKey::generate().unwrap();
    let ctx = github("erin");
    for stored in [
        ring.seal(&ctx, "gho_erin").into_string(),
        ring.seal_legacy("gho_erin").into_string(),
    ] {
        let v2 = ring
            .reseal_enveloped(None, &first, &ctx, &stored)
            .unwrap()
            .unwrap();
        assert_eq!(enveloped_key_id(&v2).unwrap(), Some(first.id()));
        assert_eq!(
            ring.open_enveloped(&first, &ctx, &v2)
                .unwrap()
                .expose_secret(),
            "gho_erin"
        );
        assert_eq!(
            ring.reseal_enveloped(None, &first, &ctx, &v2).unwrap(),
            None
        );
        // Without the old data key it cannot move.
        assert!(matches!(
            ring.reseal_enveloped(None, &second, &ctx, &v2),
            Err(CryptoError::UnknownKeyId { id }) if id == first.id()
        ));
        let moved = ring
            .reseal_enveloped(Some(&first), &second, &ctx, &v2)
            .unwrap()
            .unwrap();
        assert_eq!(
            ring.open_enveloped(&second, &ctx, &moved)
                .unwrap()
                .expose_secret(),
            "gho_erin"
        );
    }
    // A value that does not open is never re-sealed.
    let other = ring.seal(&github("frank"), "gho_frank");
    assert!(
        ring.reseal_enveloped(None, &first, &ctx, other.as_str())
            .is_err()
    );
    assert!(
        ring.reseal_enveloped(None, &first, &ctx, "plaintext")
            .is_err()
    );
}

#[test]
fn the_time_rules_apply_to_values_but_not_to_wrapped_keys() {
    let t0 = 1_800_000_000;
    let sealing = keyring(8).with_clock(clock_at(t0));
    let data_key = DataKey::generate().unwrap();
    let wrapped = sealing.wrap_data_key("gina", &data_key);
    let stored = sealing.seal_enveloped(&data_key, &github("gina"), "gho_gina");
    // A year later, with a one-day maximum age.
    let later = keyring(8)
        .with_clock(clock_at(t0 + 365 * 86_400))
        .with_max_age(Some(std::time::Duration::from_secs(86_400)));
    let unwrapped = later
        .unwrap_data_key("gina", data_key.id(), wrapped.as_str())
        .unwrap();
    assert!(matches!(
        later.open_enveloped(&unwrapped, &github("gina"), &stored),
        Err(CryptoError::Expired { .. })
    ));
    // A value from the future (a writer's clock far ahead) is refused.
    let future = keyring(8).with_clock(clock_at(t0 + 3600));
    let ahead = future.seal_enveloped(&data_key, &github("gina"), "x");
    assert!(matches!(
        sealing.open_enveloped(&data_key, &github("gina"), &ahead),
        Err(CryptoError::FromTheFuture { .. })
    ));
}

#[test]
fn a_master_rotation_rewraps_a_data_key_without_changing_it() {
    let old = keyring(1);
    let rotated = old.promote(test_key(2)).unwrap();
    let data_key = DataKey::generate().unwrap();
    let wrapped = old.wrap_data_key("alice", &data_key);
    let value = old.seal_enveloped(&data_key, &github("alice"), "gho_alice");

    let rewrapped = rotated
        .rewrap_data_key("alice", data_key.id(), wrapped.as_str())
        .unwrap();
    assert_eq!(rewrapped.key_id(), Some(test_key(2).id()));
    // The new master key alone opens the rewrapped key, and the value it
    // sealed before the rotation opens with it.
    let new_only = keyring(2);
    let unwrapped = new_only
        .unwrap_data_key("alice", data_key.id(), rewrapped.as_str())
        .unwrap();
    assert_eq!(
        new_only
            .open_enveloped(&unwrapped, &github("alice"), &value)
            .unwrap()
            .expose_secret(),
        "gho_alice"
    );
    // Bound to its owner and to the id it is stored under.
    assert!(matches!(
        rotated.rewrap_data_key("bob", data_key.id(), wrapped.as_str()),
        Err(CryptoError::AuthenticationFailed { .. })
    ));
    let other = DataKey::generate().unwrap();
    assert!(matches!(
        rotated.rewrap_data_key("alice", other.id(), wrapped.as_str()),
        Err(CryptoError::Malformed(_))
    ));
}
