//! Bad input per surface, as tables: keys and key files, secrets files,
//! audit logs, database URLs (HTTP requests and JWTs are atom-server's
//! `hostile` tests). Every case asserts the exit code, that the message
//! names the problem, that nothing on disk changed, and that no secret is
//! in the output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atom_crypto::{Context, Key, Keyring};
use base64::Engine as _;

use crate::common::{atom, text};

/// A secret value planted in inputs: it must never be printed.
const PLANTED: &str = "PLANTEDsecretVALUE42";

/// One bad input: the files it starts from, the environment, the command,
/// what must come out.
struct Case {
    name: String,
    files: Vec<(&'static str, Vec<u8>)>,
    env: Vec<(&'static str, String)>,
    args: Vec<&'static str>,
    code: i32,
    /// Words the message (stderr, or stdout for reports) must hold.
    words: Vec<&'static str>,
    /// Text that must appear in neither stream.
    secrets: Vec<String>,
}

impl Case {
    fn new(
        name: impl Into<String>,
        args: &[&'static str],
        code: i32,
        words: &[&'static str],
    ) -> Case {
        Case {
            name: name.into(),
            files: Vec::new(),
            env: Vec::new(),
            args: args.to_vec(),
            code,
            words: words.to_vec(),
            secrets: vec![PLANTED.to_owned()],
        }
    }

    fn file(mut self, name: &'static str, bytes: impl Into<Vec<u8>>) -> Case {
        self.files.push((name, bytes.into()));
        self
    }

    fn env(mut self, name: &'static str, value: impl Into<String>) -> Case {
        self.env.push((name, value.into()));
        self
    }

    fn secret(mut self, text: impl Into<String>) -> Case {
        self.secrets.push(text.into());
        self
    }
}

/// Every file under `dir`, with its bytes: the secrets files, key files and
/// database. Not the audit trail in `.atom/` (a refused operation may be
/// recorded there, as a failure) nor the writers' lock file.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == ".atom" || name.ends_with(".lock") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Runs every case in a folder of its own; returns how many ran.
fn run_table(cases: Vec<Case>, prepare: impl Fn(&Path)) -> usize {
    let n = cases.len();
    // Seen with --nocapture; docs/RELIABILITY.md counts the cases this way.
    eprintln!("bad-input table: {n} cases");
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        prepare(d);
        for (name, bytes) in &case.files {
            let path = d.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(path, bytes).unwrap();
        }
        let env: Vec<(&str, String)> = case
            .env
            .iter()
            .map(|(k, v)| (*k, v.replace("{dir}", &d.display().to_string())))
            .collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let before = snapshot(d);
        let out = atom(d, &case.args, &env);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let what = format!(
            "case {:?}: exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
            case.name,
            out.status.code()
        );
        assert_eq!(out.status.code(), Some(case.code), "{what}");
        let message = format!("{stderr}{stdout}");
        for word in &case.words {
            assert!(message.contains(word), "{what}\nmissing: {word:?}");
        }
        for secret in &case.secrets {
            assert!(!message.contains(secret.as_str()), "{what}\nleaks a secret");
        }
        assert_eq!(snapshot(d), before, "{what}\nfiles changed");
    }
    n
}

fn key(n: u8) -> Key {
    Key::from_bytes([n; 32])
}

fn b64(k: &Key) -> String {
    k.expose_base64().to_string()
}

#[test]
fn keys_and_key_files() {
    let good = b64(&key(1));
    let std_alphabet = base64::engine::general_purpose::STANDARD.encode([0xfb; 32]);
    let cases = vec![
        Case::new(
            "the audit key is the encryption key",
            &["status"],
            1,
            &[
                "ATOM_AUDIT_KEY is one of the encryption keys",
                "hint: make an audit key (not an encryption key) with: atom keys generate",
            ],
        )
        .env("ENCRYPTION_KEY", good.clone())
        .env("ATOM_AUDIT_KEY", good.clone())
        .secret(good.clone()),
        Case::new(
            "too short",
            &["keys", "check"],
            1,
            &[
                "ENCRYPTION_KEY",
                "hint: make a key with: atom keys generate",
            ],
        )
        .env("ENCRYPTION_KEY", "tooshort"),
        Case::new(
            "one character too many",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY"],
        )
        .env("ENCRYPTION_KEY", format!("{good}A")),
        Case::new(
            "a character base64 lacks",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY"],
        )
        .env("ENCRYPTION_KEY", format!("!{}", &good[1..])),
        Case::new(
            "standard alphabet",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY"],
        )
        .env("ENCRYPTION_KEY", std_alphabet.clone())
        .secret(std_alphabet),
        Case::new("space inside", &["keys", "check"], 1, &["ENCRYPTION_KEY"])
            .env("ENCRYPTION_KEY", format!("{} {}", &good[..20], &good[21..])),
        Case::new(
            "hex, 64 characters",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY"],
        )
        .env("ENCRYPTION_KEY", "ab".repeat(32)),
        Case::new("unicode", &["keys", "check"], 1, &["ENCRYPTION_KEY"])
            .env("ENCRYPTION_KEY", "é".repeat(22)),
        Case::new(
            "a planted value as key",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY"],
        )
        .env("ENCRYPTION_KEY", PLANTED),
        Case::new(
            "key and key file both",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY_FILE", "only one"],
        )
        .env("ENCRYPTION_KEY", good.clone())
        .env("ENCRYPTION_KEY_FILE", "{dir}/k"),
        Case::new(
            "key file missing",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY_FILE"],
        )
        .env("ENCRYPTION_KEY_FILE", "{dir}/missing.key"),
        Case::new(
            "key file empty",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY_FILE"],
        )
        .file("k", "")
        .env("ENCRYPTION_KEY_FILE", "{dir}/k"),
        Case::new(
            "key file with two keys",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY_FILE"],
        )
        .file("k", format!("{good}\n{}\n", b64(&key(2))))
        .env("ENCRYPTION_KEY_FILE", "{dir}/k"),
        Case::new(
            "key file is a folder",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY_FILE"],
        )
        .file("kdir/x", "")
        .env("ENCRYPTION_KEY_FILE", "{dir}/kdir"),
        Case::new(
            "key file not text",
            &["keys", "check"],
            1,
            &["ENCRYPTION_KEY_FILE"],
        )
        .file("k", vec![0xff, 0xfe, 0x00, 0x80])
        .env("ENCRYPTION_KEY_FILE", "{dir}/k"),
        Case::new(
            "bad previous key",
            &["keys", "check"],
            1,
            &["ENCRYPTION_PREVIOUS_KEYS"],
        )
        .env("ENCRYPTION_KEY", good.clone())
        .env(
            "ENCRYPTION_PREVIOUS_KEYS",
            format!("{},{PLANTED}", b64(&key(2))),
        ),
        Case::new("previous key twice", &["keys", "check"], 1, &["twice"])
            .env("ENCRYPTION_KEY", good.clone())
            .env(
                "ENCRYPTION_PREVIOUS_KEYS",
                format!("{},{}", b64(&key(2)), b64(&key(2))),
            ),
        Case::new(
            "previous keys without a primary",
            &["keys", "check"],
            1,
            &["no primary key"],
        )
        .env("ENCRYPTION_PREVIOUS_KEYS", b64(&key(2))),
        Case::new(
            "previous keys file, bad line",
            &["keys", "check"],
            1,
            &["ENCRYPTION_PREVIOUS_KEYS_FILE"],
        )
        .env("ENCRYPTION_KEY", good.clone())
        .file("prev", format!("# older\n{}\nnot-a-key\n", b64(&key(2))))
        .env("ENCRYPTION_PREVIOUS_KEYS_FILE", "{dir}/prev"),
        Case::new(
            "previous keys in both forms",
            &["keys", "check"],
            1,
            &["only one"],
        )
        .env("ENCRYPTION_KEY", good.clone())
        .env("ENCRYPTION_PREVIOUS_KEYS", b64(&key(2)))
        .env("ENCRYPTION_PREVIOUS_KEYS_FILE", "{dir}/prev"),
        Case::new(
            "encryption required, no key",
            &["status"],
            1,
            &["no key is configured", "ENCRYPTION_KEY"],
        )
        .env("ATOM_REQUIRE_ENCRYPTION", "1"),
        Case::new(
            "require flag, no key",
            &["--require-encryption", "status"],
            1,
            &["no key is configured"],
        ),
        Case::new(
            "require encryption: maybe",
            &["status"],
            1,
            &["ATOM_REQUIRE_ENCRYPTION", "1, true, 0 or false"],
        )
        .env("ATOM_REQUIRE_ENCRYPTION", "maybe"),
        Case::new(
            "refuse legacy: perhaps",
            &["keys", "check"],
            1,
            &["ATOM_REFUSE_LEGACY"],
        )
        .env("ENCRYPTION_KEY", good.clone())
        .env("ATOM_REFUSE_LEGACY", "perhaps"),
        Case::new(
            "audit key = encryption key",
            &["status"],
            1,
            &["ATOM_AUDIT_KEY", "key of its own"],
        )
        .env("ENCRYPTION_KEY", good.clone())
        .env("ATOM_AUDIT_KEY", good.clone()),
        Case::new(
            "audit key too short",
            &["credentials", "status"],
            1,
            &["ATOM_AUDIT_KEY"],
        )
        .env("ENCRYPTION_KEY", good.clone())
        .env("ATOM_AUDIT_KEY", "short"),
        Case::new(
            "audit key file missing",
            &["credentials", "status"],
            1,
            &["ATOM_AUDIT_KEY_FILE"],
        )
        .env("ENCRYPTION_KEY", good.clone())
        .env("ATOM_AUDIT_KEY_FILE", "{dir}/nope.key"),
        Case::new(
            "rotation: a key id that is not one",
            &["keys", "retire", "xyz"],
            2,
            &["not a key id", "12 lower-case hex"],
        )
        .env("ENCRYPTION_KEY_FILE", "{dir}/keys/k")
        .env("ENCRYPTION_PREVIOUS_KEYS_FILE", "{dir}/keys/p")
        .file("keys/k", format!("{good}\n")),
        Case::new(
            "rotation: retire the primary",
            &["keys", "retire", "KEY1"],
            2,
            &["primary key", "cannot be retired"],
        )
        .env("ENCRYPTION_KEY_FILE", "{dir}/keys/k")
        .env("ENCRYPTION_PREVIOUS_KEYS_FILE", "{dir}/keys/p")
        .file("keys/k", format!("{good}\n")),
        Case::new(
            "rotation: destroy a loaded key",
            &["keys", "destroy", "KEY2", "--yes"],
            2,
            &["only retired keys", "retire it first"],
        )
        .env("ENCRYPTION_KEY_FILE", "{dir}/keys/k")
        .env("ENCRYPTION_PREVIOUS_KEYS_FILE", "{dir}/keys/p")
        .file("keys/k", format!("{good}\n"))
        .file("keys/p", format!("{}\n", b64(&key(2)))),
        Case::new(
            "rotation: restore an unknown key",
            &["keys", "restore", "0123456789ab"],
            2,
            &["not in the retired-keys file"],
        )
        .env("ENCRYPTION_KEY_FILE", "{dir}/keys/k")
        .env("ENCRYPTION_PREVIOUS_KEYS_FILE", "{dir}/keys/p")
        .file("keys/k", format!("{good}\n")),
        Case::new(
            "rotation: key files without a previous-keys file",
            &["keys", "rotate", "--dry-run"],
            2,
            &["ENCRYPTION_PREVIOUS_KEYS_FILE"],
        )
        .env("ENCRYPTION_KEY_FILE", "{dir}/keys/k")
        .file("keys/k", format!("{good}\n")),
        Case::new(
            "rotation: no keys",
            &["keys", "rotate", "--dry-run"],
            1,
            &["encryption key", "ENCRYPTION_KEY"],
        ),
        Case::new(
            "rotation without --dry-run, keys in the environment",
            &["keys", "rotate"],
            2,
            &["keys/encryption.key", "mkdir -p -m 700 keys"],
        )
        .env("ENCRYPTION_KEY", good.clone())
        .file("secrets.enc", "{}"),
    ];
    let key1 = key(1).id().to_string();
    let key2 = key(2).id().to_string();
    let cases: Vec<Case> = cases
        .into_iter()
        .map(|mut c| {
            let args: Vec<&'static str> = c
                .args
                .iter()
                .map(|a| match *a {
                    "KEY1" => &*Box::leak(key1.clone().into_boxed_str()),
                    "KEY2" => &*Box::leak(key2.clone().into_boxed_str()),
                    other => other,
                })
                .collect();
            c.args = args;
            c.secrets.push(b64(&key(1)));
            c.secrets.push(b64(&key(2)));
            c
        })
        .collect();
    assert!(run_table(cases, |_| {}) >= 30);
}

#[test]
fn secrets_files() {
    let ring = Keyring::new(key(1), []).unwrap();
    // A token whose standard-alphabet encoding differs from its own (one in
    // about 25 has neither '-' nor '_', and would be the same text).
    let legacy = loop {
        let t = ring.seal_legacy(PLANTED).into_string();
        if t.contains(['-', '_']) {
            break t;
        }
    };
    let sealed = ring.seal(&Context::secret("a"), PLANTED).into_string();
    let other = Keyring::new(key(2), [])
        .unwrap()
        .seal(&Context::secret("a"), PLANTED)
        .into_string();
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(&legacy)
        .unwrap();
    let mut v81 = raw.clone();
    v81[0] = 0x81;
    let env = || {
        vec![
            ("ENCRYPTION_KEY", b64(&key(1))),
            ("ATOM_AUDIT_KEY", b64(&key(9))),
        ]
    };
    let migrate = |name: &str, json: Vec<u8>, code: i32, words: &[&'static str]| {
        let mut c = Case::new(
            format!("secrets.json: {name}"),
            &["secrets", "migrate"],
            code,
            words,
        )
        .file("secrets.json", json);
        for (k, v) in env() {
            c = c.env(k, v);
        }
        c
    };
    let enc =
        |name: &str, json: String, args: &[&'static str], code: i32, words: &[&'static str]| {
            let mut c = Case::new(format!("secrets.enc: {name}"), args, code, words)
                .file("secrets.enc", json);
            for (k, v) in env() {
                c = c.env(k, v);
            }
            c
        };
    let deep = format!("{{\"a\": {}1{}}}", "[".repeat(200), "]".repeat(200));
    let cases = vec![
        migrate(
            "truncated",
            b"{\"a\": \"x\"".to_vec(),
            1,
            &["not valid JSON", "line 1"],
        ),
        migrate(
            "trailing comma",
            b"{\"a\": \"x\",}".to_vec(),
            1,
            &["not valid JSON", "column"],
        ),
        migrate(
            "comment",
            b"{\"a\": \"x\" // note\n}".to_vec(),
            1,
            &["not valid JSON"],
        ),
        migrate(
            "single quotes",
            b"{'a': 'x'}".to_vec(),
            1,
            &["not valid JSON"],
        ),
        migrate("NaN", b"{\"a\": NaN}".to_vec(), 1, &["not valid JSON"]),
        migrate(
            "control character in a string",
            b"{\"a\": \"x\x01y\"}".to_vec(),
            1,
            &["not valid JSON"],
        ),
        migrate(
            "unterminated string",
            b"{\"a\": \"xyz}".to_vec(),
            1,
            &["not valid JSON"],
        ),
        migrate("nested too deep", deep.into_bytes(), 1, &["not valid JSON"]),
        migrate(
            "an array at the top",
            b"[\"x\"]".to_vec(),
            1,
            &["not a JSON object"],
        ),
        migrate(
            "a string at the top",
            format!("\"{PLANTED}\"").into_bytes(),
            1,
            &["not a JSON object"],
        ),
        migrate(
            "a number at the top",
            b"42".to_vec(),
            1,
            &["not a JSON object"],
        ),
        migrate(
            "null at the top",
            b"null".to_vec(),
            1,
            &["not a JSON object"],
        ),
        migrate("empty file", Vec::new(), 1, &["empty"]),
        migrate("only whitespace", b"  \n\t ".to_vec(), 1, &["empty"]),
        migrate(
            "UTF-8 BOM",
            b"\xEF\xBB\xBF{\"a\": \"x\"}".to_vec(),
            1,
            &["BOM"],
        ),
        migrate(
            "Latin-1 byte",
            b"{\"a\": \"caf\xE9\"}".to_vec(),
            1,
            &["not UTF-8", "line 1"],
        ),
        migrate("UTF-16", b"\xFF\xFE{\x00}\x00".to_vec(), 1, &["not UTF-8"]),
        migrate(
            "a name twice",
            format!("{{\"a\": \"{PLANTED}\", \"a\": \"y\"}}").into_bytes(),
            1,
            &["\"a\" appears twice"],
        ),
        migrate(
            "a nested name twice",
            b"{\"a\": {\"k\": 1, \"k\": 2}}".to_vec(),
            1,
            &["\"k\" appears twice"],
        ),
        migrate(
            "a token with a space",
            format!("{{\"db\": \" {legacy}\"}}").into_bytes(),
            3,
            &["db", "malformed"],
        ),
        migrate(
            "a token in quotes",
            format!("{{\"db\": \"'{legacy}'\"}}").into_bytes(),
            3,
            &["db", "malformed"],
        ),
        migrate(
            "version byte 0x81",
            format!(
                "{{\"db\": \"{}\"}}",
                base64::engine::general_purpose::URL_SAFE.encode(&v81)
            )
            .into_bytes(),
            3,
            &["malformed"],
        ),
        migrate(
            "standard alphabet token",
            format!(
                "{{\"db\": \"{}\"}}",
                base64::engine::general_purpose::STANDARD.encode(&raw)
            )
            .into_bytes(),
            3,
            &["malformed"],
        ),
        migrate(
            "a damaged sealed value",
            format!("{{\"db\": \"atom:v1:{}:gAAAAAbroken\"}}", key(1).id()).into_bytes(),
            3,
            &["malformed"],
        ),
        migrate(
            "an unknown format version",
            format!("{{\"db\": \"atom:v9:{}:{legacy}\"}}", key(1).id()).into_bytes(),
            3,
            &["malformed"],
        ),
        migrate(
            "sealed under another key",
            format!("{{\"a\": \"{other}\"}}").into_bytes(),
            3,
            &["\"a\"", "not configured"],
        ),
        migrate(
            "sealed for another name",
            format!("{{\"b\": \"{sealed}\"}}").into_bytes(),
            3,
            &["does not authenticate"],
        ),
        migrate(
            "a damaged token inside an object",
            format!("{{\"db\": {{\"password\": \" {legacy}\"}}}}").into_bytes(),
            3,
            &["malformed"],
        ),
        enc(
            "a value moved to another name",
            format!("{{\"b\": \"{sealed}\"}}"),
            &["secrets", "verify"],
            3,
            &["b: not_authentic"],
        ),
        enc(
            "a damaged token",
            format!("{{\"db\": \"{legacy} \"}}"),
            &["secrets", "verify"],
            3,
            &["db: malformed"],
        ),
        enc(
            "plaintext where a key is set",
            format!("{{\"db\": \"{PLANTED}\"}}"),
            &["secrets", "rewrap"],
            3,
            &["plaintext", "\"db\""],
        ),
        enc(
            "get of a missing name",
            "{}".to_owned(),
            &["secrets", "get", "nope"],
            1,
            &["no entry named \"nope\""],
        ),
        enc(
            "get of a damaged value",
            format!("{{\"db\": \"\\\"{legacy}\\\"\"}}"),
            &["secrets", "get", "db"],
            3,
            &["malformed"],
        ),
        enc(
            "not JSON",
            "{not json".to_owned(),
            &["secrets", "verify"],
            1,
            &["not valid JSON"],
        ),
    ];
    assert!(run_table(cases, |_| {}) >= 30);
}

#[test]
fn audit_logs() {
    // One intact log, made by real commands, tampered with per case.
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    let env = [
        ("ENCRYPTION_KEY", b64(&key(1))),
        ("ATOM_AUDIT_KEY", b64(&key(9))),
    ];
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [
        &["db", "migrate"][..],
        &["credentials", "status"],
        &["credentials", "list", "alice"],
        &["credentials", "status"],
    ] {
        let out = atom(b, args, &env_ref);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let log = std::fs::read(b.join(".atom/audit.jsonl")).unwrap();
    let sidecar = std::fs::read(b.join(".atom/audit.jsonl.checkpoint")).unwrap();
    let lines: Vec<&[u8]> = log.split_inclusive(|&c| c == b'\n').collect();
    assert!(lines.len() >= 5, "{} records", lines.len());
    let join = |ls: Vec<&[u8]>| ls.concat();
    let flip = |at: usize| {
        let mut l = log.clone();
        l[at] ^= 0x01;
        l
    };
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    let mut duplicated = lines.clone();
    duplicated.insert(2, lines[1]);
    let mut removed = lines.clone();
    removed.remove(1);
    let other_key = b64(&key(8));
    let verify = |name: &str, log: Vec<u8>, words: &[&'static str]| {
        Case::new(format!("audit log: {name}"), &["audit", "verify"], 3, words)
            .file(".atom/audit.jsonl", log)
            .file(".atom/audit.jsonl.checkpoint", sidecar.clone())
            .env("ENCRYPTION_KEY", b64(&key(1)))
            .env("ATOM_AUDIT_KEY", b64(&key(9)))
    };
    let cases = vec![
        verify(
            "a byte of the first record changed",
            flip(40),
            &["NOT intact", "line 1"],
        ),
        verify(
            "a byte of the last record changed",
            flip(log.len() - 10),
            &["NOT intact"],
        ),
        verify("records swapped", join(swapped), &["NOT intact", "line 2"]),
        verify(
            "a record replayed",
            join(duplicated),
            &["NOT intact", "line 3"],
        ),
        verify("a record removed", join(removed), &["NOT intact", "line 2"]),
        verify(
            "the tail cut",
            join(lines[..2].to_vec()),
            &["NOT intact", "cut"],
        ),
        verify(
            "cut inside the last line",
            log[..log.len() - 5].to_vec(),
            &["NOT intact", "incomplete"],
        ),
        verify(
            "garbage appended",
            [log.clone(), b"{\"not\": \"a record\"}\n".to_vec()].concat(),
            &["NOT intact"],
        ),
        verify("emptied", Vec::new(), &["NOT intact", "cut"]),
        verify(
            "not JSON at all",
            b"hello\nworld\n".to_vec(),
            &["NOT intact"],
        ),
        verify(
            "another log's first record",
            [lines[0].to_vec(), lines[0].to_vec()].concat(),
            &["NOT intact"],
        ),
        Case::new(
            "audit log: verified under another key",
            &["audit", "verify"],
            3,
            &["NOT intact"],
        )
        .file(".atom/audit.jsonl", log.clone())
        .file(".atom/audit.jsonl.checkpoint", sidecar.clone())
        .env("ATOM_AUDIT_KEY", other_key.clone())
        .secret(other_key.clone()),
        Case::new(
            "audit log: no key at all",
            &["audit", "verify"],
            3,
            &["NOT intact", "audit key"],
        )
        .file(".atom/audit.jsonl", log.clone()),
        Case::new(
            "audit log: missing",
            &["audit", "verify"],
            3,
            &["NOT intact", "does not exist"],
        )
        .env("ATOM_AUDIT_KEY", b64(&key(9))),
        verify("the sidecar from another log", log.clone(), &["NOT intact"])
            .file(".atom/audit.jsonl.checkpoint", lines[1].to_vec()),
    ];
    assert!(run_table(cases, |_| {}) >= 15);
}

#[test]
fn database_urls() {
    let env = |url: &str| {
        Case::new(format!("DATABASE_URL={url}"), &["db", "status"], 1, &[])
            .env("DATABASE_URL", url.to_owned())
            .env("ENCRYPTION_KEY", b64(&key(1)))
    };
    let cases = vec![
        env(&format!("ftp://user:{PLANTED}@host/db")).words_(&[
            "no supported scheme",
            "sqlite://",
            "***",
        ]),
        env(&format!("http://user:{PLANTED}@host/db")).words_(&["no supported scheme"]),
        env("not a url").words_(&["no supported scheme"]),
        env(&format!("postgres://atom:{PLANTED}@127.0.0.1:1/atom")).words_(&[
            "cannot reach",
            "127.0.0.1:1",
            "***",
        ]),
        env(&format!("postgresql://atom:{PLANTED}@127.0.0.1:1/atom"))
            .words_(&["cannot reach", "***"]),
        env(&format!("mysql://root:{PLANTED}@127.0.0.1:1/atom")).words_(&["cannot reach", "***"]),
        env(&format!("mariadb://root:{PLANTED}@127.0.0.1:1/atom")).words_(&["cannot reach", "***"]),
        env(&format!(
            "postgres://atom@127.0.0.1:1/atom?password={PLANTED}"
        ))
        .words_(&["cannot reach", "***"]),
        env(&format!("postgres://atom:{PLANTED}@[::1]:1/atom")).words_(&["cannot reach"]),
        env("postgres://").words_(&["names no host", "postgres://user:password@host"]),
        env(&format!("postgres://atom:{PLANTED}@127.0.0.1:port/atom")).words_(&[
            "not a valid URL",
            "invalid port number",
            "***",
        ]),
        env(&format!("mysql://root:{PLANTED}@/atom"))
            .words_(&["not a valid URL (empty host)", "***"]),
        env("sqlite:///nonexistent-folder/sub/atom.db")
            .args_(&["db", "migrate"])
            .words_(&["nonexistent-folder"]),
        env("sqlite://{dir}/a-folder")
            .args_(&["db", "migrate"])
            .words_(&["a-folder"])
            .file_("a-folder/x", ""),
        Case::new(
            "ATOM_DB_MAX_CONNECTIONS=0",
            &["db", "status"],
            1,
            &["ATOM_DB_MAX_CONNECTIONS", "at least 1"],
        )
        .env("ATOM_DB_MAX_CONNECTIONS", "0"),
        Case::new(
            "ATOM_DB_MAX_CONNECTIONS=many",
            &["db", "status"],
            1,
            &["ATOM_DB_MAX_CONNECTIONS"],
        )
        .env("ATOM_DB_MAX_CONNECTIONS", "many"),
        Case::new(
            "ATOM_CREDENTIALS_PLAINTEXT_TRANSITION=yes",
            &["db", "status"],
            1,
            &["ATOM_CREDENTIALS_PLAINTEXT_TRANSITION"],
        )
        .env("ATOM_CREDENTIALS_PLAINTEXT_TRANSITION", "yes"),
        env("sqlite://{dir}/never-made.db")
            .args_(&["credentials", "get", "alice", "github"])
            .words_(&["does not exist yet", "atom db migrate"]),
    ];
    assert!(run_table(cases, |_| {}) >= 15);
}

impl Case {
    fn words_(mut self, words: &[&'static str]) -> Case {
        self.words = words.to_vec();
        self
    }

    fn args_(mut self, args: &[&'static str]) -> Case {
        self.args = args.to_vec();
        self
    }

    fn file_(self, name: &'static str, bytes: &str) -> Case {
        self.file(name, bytes.as_bytes().to_vec())
    }
}

#[test]
fn the_secret_value_is_really_planted() {
    // The tables above check that PLANTED never comes out; make sure it
    // does come out where it is meant to, so the check can fail.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("secrets.json"), format!("{{\"a\": \"{PLANTED}\"}}")).unwrap();
    let env = [
        ("ENCRYPTION_KEY", b64(&key(1))),
        ("ATOM_AUDIT_KEY", b64(&key(9))),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert!(atom(d, &["secrets", "migrate"], &env).status.success());
    let out = atom(d, &["secrets", "get", "a"], &env);
    assert_eq!(text(&out.stdout).trim_end(), PLANTED);
}
