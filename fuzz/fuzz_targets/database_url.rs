//! Database URLs: parsing never panics, and neither the parsed URL's
//! display nor `redact_url` ever shows the password.
#![no_main]

use arbitrary::Arbitrary;
use atom_credentials::{DatabaseUrl, redact_url};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    Text(String),
    Parts {
        scheme: u8,
        user: String,
        password: String,
        host: String,
        rest: String,
        in_query: bool,
    },
}

fuzz_target!(|input: Input| {
    match input {
        Input::Text(text) => {
            let _ = redact_url(&text);
            if let Ok(url) = DatabaseUrl::parse(&text) {
                let _ = url.to_string();
            }
        }
        Input::Parts { scheme, user, password, host, rest, in_query } => {
            // A password of letters only, long enough to be told apart.
            let password: String = password.chars().filter(|c| c.is_ascii_alphabetic()).collect();
            if password.len() < 6 {
                return;
            }
            let clean = |s: &str| -> String {
                s.chars().filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c)).collect()
            };
            let (user, host, rest) = (clean(&user), clean(&host), clean(&rest));
            if [&user, &host, &rest].iter().any(|p| p.contains(&password)) {
                return;
            }
            let scheme = ["postgres", "postgresql", "mysql", "mariadb"][usize::from(scheme % 4)];
            let text = if in_query {
                format!("{scheme}://{user}@{host}/{rest}?password={password}")
            } else {
                format!("{scheme}://{user}:{password}@{host}/{rest}")
            };
            assert!(!redact_url(&text).contains(&password), "{text}");
            if let Ok(url) = DatabaseUrl::parse(&text) {
                assert!(!url.to_string().contains(&password), "{text}");
                assert!(!format!("{url:?}").contains(&password), "{text}");
            }
        }
    }
});
