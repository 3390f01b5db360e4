//! Sealing and opening: context binding, legacy tokens, classification,
//! tampering, key ids, time rules and rotation.

use std::time::Duration;

use atom_crypto::{
    Classification, Context, CryptoError, ExposeSecret, Key, Keyring, StoredValue, ValueKind,
    classify,
};

use crate::common::{clock_at, keyring, test_key};

const TOKEN: &str = "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx";

#[test]
fn round_trip_names_the_primary_key() {
    let ring = keyring(1);
    let ctx = Context::credential("user_123", "slack");
    let sealed = ring.seal(&ctx, TOKEN);
    assert!(
        sealed
            .as_str()
            .starts_with(&format!("atom:v1:{}:gAAAAA", ring.primary_id()))
    );
    assert_eq!(sealed.key_id(), Some(ring.primary_id()));
    assert_eq!(sealed.kind(), ValueKind::Sealed);
    assert_eq!(
        ring.open(&ctx, sealed.as_str()).unwrap().expose_secret(),
        TOKEN
    );
    assert_eq!(StoredValue::parse(sealed.as_str()).unwrap(), sealed);
}

#[test]
fn a_value_moved_to_another_context_does_not_open() {
    let ring = keyring(1);
    let sealed = ring.seal(&Context::credential("alice", "slack"), TOKEN);
    for other in [
        Context::credential("bob", "slack"),
        Context::credential("alice", "google"),
        Context::credential("alic", "eslack"),
        Context::secret("alice"),
    ] {
        let err = ring.open(&other, sealed.as_str()).unwrap_err();
        assert!(
            matches!(
                err,
                CryptoError::AuthenticationFailed {
                    kind: ValueKind::Sealed
                }
            ),
            "{other:?}: {err:?}"
        );
    }
}

#[test]
fn contexts_with_the_same_concatenation_differ() {
    assert_ne!(
        Context::credential("ab", "c"),
        Context::credential("a", "bc")
    );
    assert_ne!(
        Context::credential("ab", "c").encoded(),
        Context::credential("a", "bc").encoded()
    );
    assert_ne!(
        Context::from_parts("x", &["", "y"]),
        Context::from_parts("x", &["y", ""])
    );
    let ring = keyring(2);
    let sealed = ring.seal(&Context::credential("ab", "c"), "v");
    assert!(
        ring.open(&Context::credential("a", "bc"), sealed.as_str())
            .is_err()
    );
}

#[test]
fn legacy_tokens_open_with_any_key_of_the_ring_and_under_any_context() {
    let old = keyring(1);
    let legacy = old.seal_legacy(TOKEN);
    assert_eq!(legacy.kind(), ValueKind::Legacy);
    assert_eq!(legacy.key_id(), None);
    assert!(legacy.as_str().starts_with("gAAAAA"));
    // The new primary does not know it; the old key, decrypt-only, does.
    let ring = Keyring::new(test_key(9), [test_key(1)]).unwrap();
    for ctx in [Context::credential("u", "p"), Context::secret("s")] {
        assert_eq!(
            ring.open(&ctx, legacy.as_str()).unwrap().expose_secret(),
            TOKEN
        );
    }
    // Without the key it is an authentication failure, not plaintext.
    let err = keyring(3)
        .open(&Context::secret("s"), legacy.as_str())
        .unwrap_err();
    assert!(matches!(
        err,
        CryptoError::AuthenticationFailed {
            kind: ValueKind::Legacy
        }
    ));
}

#[test]
fn classification_is_structural() {
    let ring = keyring(1);
    let sealed = ring.seal(&Context::secret("n"), "v");
    let legacy = ring.seal_legacy("v");
    assert_eq!(
        classify(sealed.as_str()).unwrap(),
        Classification::Sealed(ring.primary_id())
    );
    assert_eq!(classify(legacy.as_str()).unwrap(), Classification::Legacy);
    for plain in [
        "",
        "hunter2",
        "gAAAA",
        "gAAAAB",
        "atomic",
        "sk-abc",
        "  spaced out  ",
        "\"quoted\"",
    ] {
        assert_eq!(
            classify(plain).unwrap(),
            Classification::Plaintext,
            "{plain}"
        );
    }
    // Claims our form, or starts like a Fernet token, but is broken: an
    // error, never plaintext.
    for broken in [
        "gAAAAABh...".to_owned(),
        format!("{}\n", legacy.as_str()),
        legacy.as_str()[..legacy.as_str().len() - 4].to_owned(),
        legacy.as_str().trim_end_matches('=').to_owned(),
        format!("atom:v1:{}", ring.primary_id()),
        format!("atom:v1:{}:not-a-token", ring.primary_id()),
        "atom:v1:XYZ:gAAAAA".to_owned(),
        format!("atom:v2:{}:{}", ring.primary_id(), legacy.as_str()),
        format!("atom:v3:{}:{}", ring.primary_id(), legacy.as_str()),
        "atom:hello".to_owned(),
        "ATOM:v:x".to_owned(),
    ] {
        assert!(
            matches!(classify(&broken), Err(CryptoError::Malformed(_))),
            "{broken}"
        );
        assert!(ring.open(&Context::secret("n"), &broken).is_err());
    }
    // A plaintext value is refused by open, with a pointer to rewrap.
    let err = ring.open(&Context::secret("n"), "hunter2").unwrap_err();
    assert!(matches!(err, CryptoError::NotSealed));
    assert!(err.to_string().contains("rewrap"));
}

/// Damaged ciphertext is never plaintext: every way a token is commonly
/// damaged in transit (a stray space, quotes, a changed version byte,
/// another base64 alphabet, lost padding, line breaks) is `Malformed`, so
/// no command seals it as if it were the secret.
#[test]
fn damaged_tokens_are_malformed_never_plaintext() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    let ring = keyring(1);
    // A token whose standard-alphabet encoding differs from its own (one in
    // about 25 has neither '-' nor '_', and would be the same text).
    let legacy = loop {
        let t = ring.seal_legacy("real-db-password").into_string();
        if t.contains(['-', '_']) {
            break t;
        }
    };
    let sealed = ring
        .seal(&Context::secret("n"), "real-db-password")
        .into_string();
    let bytes = URL_SAFE.decode(&legacy).unwrap();
    let mut v81 = bytes.clone();
    v81[0] = 0x81;
    let mut v00 = bytes.clone();
    v00[0] = 0x00;
    let wrapped_at_76: String = legacy
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let mut percent = legacy.clone();
    percent.replace_range(..13, "%%%%%%%%%%%%%");
    let cases = [
        ("leading space", format!(" {legacy}")),
        ("trailing space", format!("{legacy} ")),
        ("tab and newline", format!("\t{legacy}\r\n")),
        ("double quotes", format!("\"{legacy}\"")),
        ("single quotes", format!("'{legacy}'")),
        ("backticks", format!("`{legacy}`")),
        ("sealed in quotes", format!("\"{sealed}\"")),
        ("sealed with a space", format!("{sealed} ")),
        ("version byte 0x81", URL_SAFE.encode(&v81)),
        ("version byte 0x00", URL_SAFE.encode(&v00)),
        ("version 0x81 unpadded", URL_SAFE_NO_PAD.encode(&v81)),
        ("standard alphabet", STANDARD.encode(&bytes)),
        (
            "standard alphabet, unpadded",
            STANDARD_NO_PAD.encode(&bytes),
        ),
        ("url-safe, unpadded", URL_SAFE_NO_PAD.encode(&bytes)),
        ("wrapped at 76 columns", wrapped_at_76),
        ("characters base64 lacks", percent),
        ("a character replaced", legacy.replacen('A', "!", 1)),
    ];
    for (what, text) in &cases {
        let err = classify(text).expect_err(what);
        assert!(matches!(err, CryptoError::Malformed(_)), "{what}: {err:?}");
        assert!(
            !err.to_string().contains(&legacy[10..40]),
            "{what}: the message holds the token"
        );
        assert!(
            matches!(
                ring.open(&Context::secret("n"), text),
                Err(CryptoError::Malformed(_))
            ),
            "{what}"
        );
        // Rewrap refuses it even where plaintext would be sealed.
        assert!(
            ring.rewrap(&Context::secret("n"), text, true).is_err(),
            "{what}"
        );
    }
    // Ordinary secrets stay plaintext, including long random ones in
    // either base64 alphabet whose bytes are not laid out like a token.
    let random_b64 = URL_SAFE.encode([0x5au8; 75]);
    let random_std = STANDARD.encode([0xfbu8; 120]);
    for plain in [
        "xoxb-1234-5678-abcdefghijklmnop",
        "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
        "correct horse battery staple",
        random_b64.as_str(),
        random_std.as_str(),
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----",
    ] {
        assert_eq!(
            classify(plain).unwrap(),
            Classification::Plaintext,
            "{plain}"
        );
    }
}

#[test]
fn unknown_key_id_is_named() {
    let sealed = keyring(1).seal(&Context::secret("n"), "v");
    let err = keyring(2)
        .open(&Context::secret("n"), sealed.as_str())
        .unwrap_err();
    match err {
        CryptoError::UnknownKeyId { id } => assert_eq!(id, keyring(1).primary_id()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_swapped_key_id_does_not_open() {
    // Relabel a value as sealed under another key of the ring.
    let ring = Keyring::new(test_key(1), [test_key(2)]).unwrap();
    let sealed = ring.seal(&Context::secret("n"), "v");
    let other_id = test_key(2).id().to_string();
    let relabelled = sealed
        .as_str()
        .replacen(&ring.primary_id().to_string(), &other_id, 1);
    assert!(matches!(
        ring.open(&Context::secret("n"), &relabelled),
        Err(CryptoError::AuthenticationFailed { .. })
    ));
}

#[test]
fn duplicate_keys_are_refused() {
    let err = Keyring::new(test_key(1), [test_key(2), test_key(1)]).unwrap_err();
    match &err {
        CryptoError::DuplicateKey { id, first, second } => {
            assert_eq!(*id, test_key(1).id());
            assert_eq!(first, "the primary key");
            assert_eq!(second, "previous key #2");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("configured twice"));
}

#[test]
fn max_age_and_future_skew() {
    let clock = clock_at(1_000_000);
    let ring = keyring(1)
        .with_clock(clock.clone())
        .with_max_age(Some(Duration::from_secs(60)));
    let ctx = Context::secret("n");
    let sealed = ring.seal(&ctx, "v");
    clock.advance(60);
    assert!(
        ring.open(&ctx, sealed.as_str()).is_ok(),
        "exactly max age is allowed"
    );
    clock.advance(1);
    assert!(matches!(
        ring.open(&ctx, sealed.as_str()),
        Err(CryptoError::Expired {
            age_secs: 61,
            max_age_secs: 60
        })
    ));
    // Without a max age, old tokens open.
    assert!(
        ring.clone()
            .with_max_age(None)
            .open(&ctx, sealed.as_str())
            .is_ok()
    );

    // Sealed "in the future" by a host whose clock runs ahead.
    let ahead = keyring(1).with_clock(clock_at(2_000_060));
    let behind = keyring(1).with_clock(clock_at(2_000_000));
    let sealed = ahead.seal(&ctx, "v");
    assert!(
        behind.open(&ctx, sealed.as_str()).is_ok(),
        "60 s of skew is allowed"
    );
    let sealed = keyring(1).with_clock(clock_at(2_000_061)).seal(&ctx, "v");
    assert!(matches!(
        behind.open(&ctx, sealed.as_str()),
        Err(CryptoError::FromTheFuture { ahead_secs: 61 })
    ));
}

#[test]
fn hostile_timestamps_neither_overflow_nor_panic() {
    let ctx = Context::secret("n");
    for (made_at, now, max_age) in [
        (u64::MAX, 0, None),
        (u64::MAX, 1_700_000_000, Some(60)),
        (u64::MAX - 30, u64::MAX - 60, Some(u64::MAX)),
        (0, u64::MAX, Some(60)),
        (0, u64::MAX, Some(u64::MAX)),
        (u64::MAX, u64::MAX, Some(u64::MAX)),
    ] {
        let sealed = keyring(1).with_clock(clock_at(made_at)).seal(&ctx, "v");
        let legacy = keyring(1).with_clock(clock_at(made_at)).seal_legacy("v");
        let reader = keyring(1)
            .with_clock(clock_at(now))
            .with_max_age(max_age.map(Duration::from_secs));
        for value in [sealed.as_str(), legacy.as_str()] {
            let got = reader.open(&ctx, value);
            let expect_ok = made_at <= now.saturating_add(60)
                && max_age.is_none_or(|m| now.saturating_sub(made_at) <= m);
            assert_eq!(
                got.is_ok(),
                expect_ok,
                "{made_at} {now} {max_age:?}: {got:?}"
            );
        }
    }
}

#[test]
fn tampered_values_fail_and_errors_hold_no_secret() {
    let ring = keyring(1);
    let ctx = Context::secret("n");
    let sealed = ring.seal(&ctx, TOKEN);
    let text = sealed.as_str();
    let token_start = text.rfind(':').unwrap() + 1;
    let mut changed = 0;
    for i in token_start..text.len() {
        let mut bytes = text.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let Ok(tampered) = String::from_utf8(bytes) else {
            continue;
        };
        if tampered == text {
            continue;
        }
        changed += 1;
        match ring.open(&ctx, &tampered) {
            Ok(v) => panic!(
                "tampered value at {i} opened to {} bytes",
                v.expose_secret().len()
            ),
            Err(e) => assert!(!e.to_string().contains(TOKEN) && !format!("{e:?}").contains(TOKEN)),
        }
    }
    assert!(changed > 100);
}

#[test]
fn rotation_promote_rewrap_retire() {
    let old = keyring(1);
    let ctx = Context::credential("u", "p");
    let sealed_old = old.seal(&ctx, TOKEN);
    let legacy = old.seal_legacy(TOKEN);

    let rotated = old.promote(test_key(2)).unwrap();
    assert_eq!(rotated.primary_id(), test_key(2).id());
    assert!(rotated.contains(old.primary_id()));
    assert!(rotated.needs_rewrap(sealed_old.as_str()).unwrap());
    assert!(rotated.needs_rewrap(legacy.as_str()).unwrap());
    assert!(rotated.needs_rewrap("plain").unwrap());

    let new_value = rotated
        .rewrap(&ctx, sealed_old.as_str(), false)
        .unwrap()
        .unwrap();
    let from_legacy = rotated
        .rewrap(&ctx, legacy.as_str(), false)
        .unwrap()
        .unwrap();
    let from_plain = rotated.rewrap(&ctx, TOKEN, true).unwrap().unwrap();
    assert!(matches!(
        rotated.rewrap(&ctx, TOKEN, false),
        Err(CryptoError::NotSealed)
    ));
    for v in [&new_value, &from_legacy, &from_plain] {
        assert_eq!(v.key_id(), Some(rotated.primary_id()));
        assert!(!rotated.needs_rewrap(v.as_str()).unwrap());
        assert!(
            rotated.rewrap(&ctx, v.as_str(), false).unwrap().is_none(),
            "never sealed twice"
        );
    }

    let retired = rotated.retire(old.primary_id()).unwrap();
    assert!(!retired.contains(old.primary_id()));
    assert_eq!(
        retired
            .open(&ctx, new_value.as_str())
            .unwrap()
            .expose_secret(),
        TOKEN
    );
    assert!(matches!(
        retired.open(&ctx, sealed_old.as_str()),
        Err(CryptoError::UnknownKeyId { .. })
    ));
    assert!(retired.retire(retired.primary_id()).is_err());

    // Promoting a decrypt-only key moves it up rather than duplicating it.
    let back = rotated.promote(test_key(1)).unwrap();
    assert_eq!(back.primary_id(), old.primary_id());
    assert_eq!(back.key_ids().count(), 2);
}

#[test]
fn non_utf8_plaintext_is_reported() {
    // The Python original can encrypt arbitrary bytes; build such a legacy
    // token with the fernet crate directly.
    let key = test_key(5);
    let f = fernet::Fernet::new(&key.expose_base64()).unwrap();
    let token = f.encrypt(&[0xff, 0xfe, 0x00]);
    let ring = Keyring::new(key, []).unwrap();
    assert!(matches!(
        ring.open(&Context::secret("n"), &token),
        Err(CryptoError::NotUtf8)
    ));
}

#[test]
fn generated_keys_are_fresh() {
    let a = Key::generate().unwrap();
    let b = Key::generate().unwrap();
    assert_ne!(a, b);
}

#[test]
fn legacy_tokens_can_be_refused_after_a_rotation() {
    let ring = keyring(1);
    let legacy = ring.seal_legacy(TOKEN);
    let sealed = ring.seal(&Context::secret("n"), TOKEN);
    let strict = ring.clone().with_legacy(false);
    assert!(matches!(
        strict.open(&Context::secret("n"), legacy.as_str()),
        Err(CryptoError::LegacyRefused)
    ));
    assert_eq!(
        strict
            .open(&Context::secret("n"), sealed.as_str())
            .unwrap()
            .expose_secret(),
        TOKEN
    );
    assert!(
        ring.open(&Context::secret("n"), legacy.as_str()).is_ok(),
        "on by default"
    );
}

/// The Python original's `SecretsEncryption` format: bare Fernet tokens.
/// `open_legacy` opens them under any key of the ring and refuses the rest;
/// `rotate_legacy` re-seals under the primary key in the same form with
/// the token's timestamp kept (pyca's `MultiFernet.rotate`).
#[test]
fn legacy_tokens_open_under_the_ring_and_rotate_to_the_primary() {
    use atom_crypto::ExposeSecret as _;
    let old = keyring(1);
    let token = old.seal_legacy("xoxb-legacy").into_string();
    let both = Keyring::new(test_key(2), [test_key(1)]).unwrap();
    assert_eq!(
        both.open_legacy(&token).unwrap().expose_secret(),
        "xoxb-legacy"
    );
    let rotated = both.rotate_legacy(&token).unwrap().into_string();
    assert!(rotated.starts_with("gAAAAA"), "still the legacy form");
    assert_ne!(rotated, token);
    // The same timestamp (bytes 1..9 of the token).
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE;
    assert_eq!(
        b64.decode(&rotated).unwrap()[1..9],
        b64.decode(&token).unwrap()[1..9]
    );
    // Under the new primary alone.
    assert_eq!(
        keyring(2).open_legacy(&rotated).unwrap().expose_secret(),
        "xoxb-legacy"
    );
    assert!(keyring(1).open_legacy(&rotated).is_err());
    // Plaintext, sealed values and damaged tokens are refused.
    assert!(matches!(
        both.open_legacy("hello"),
        Err(CryptoError::NotSealed)
    ));
    let sealed = both.seal(&Context::secret("n"), "v").into_string();
    assert!(matches!(
        both.open_legacy(&sealed),
        Err(CryptoError::Malformed(_))
    ));
    assert!(both.rotate_legacy(&format!("{token}x")).is_err());
}
