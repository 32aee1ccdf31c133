#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Signed notes: the C2SP signed-note example, the golang.org/x/mod/sumdb/note reference
//! vectors, round trips, tampering, malformed notes and verifier keys, and property tests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custody_audit::note::ED25519_ALGORITHM;
use custody_audit::{
    MAX_SIGNATURES, Note, NoteError, NoteSignature, Signer, Verifier, ed25519_key_id, open, sign, verify,
};
use proptest::prelude::*;

// The example of c2sp.org/signed-note ("Verifier keys", "Example"), verbatim.
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

// The introductory note of c2sp.org/signed-note (its key is not given): a text with an empty line.
const SPEC_INTRO_NOTE: &str = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n\u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";

// The reference vectors of golang.org/x/mod/sumdb/note (note_test.go), whose private key is given
// (`PRIVATE+KEY+<name>+<id>+base64(0x01 || seed)`).
const GO_SKEY_MATERIAL: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const GO_ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const GO_ENOCH_SIG: &str =
    "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn go_note() -> String {
    format!("{GO_TEXT}\n{GO_PETER_SIG}")
}

fn go_signer() -> Signer {
    let material = STANDARD.decode(GO_SKEY_MATERIAL).unwrap();
    assert_eq!(material[0], ED25519_ALGORITHM);
    Signer::from_seed("PeterNeumann", &material[1..]).unwrap()
}

// ---- vectors ------------------------------------------------------------------------------------

#[test]
fn spec_verifier_key_parses_and_formats_back() {
    let v = Verifier::parse(SPEC_VKEY).unwrap();
    assert_eq!(v.name(), "example.com/foo");
    assert_eq!(v.key_id(), 0x530d_903a);
    assert_eq!(ed25519_key_id(v.name(), v.public_key()), 0x530d_903a);
    assert_eq!(v.verifier_key(), SPEC_VKEY);
    assert_eq!(v.to_string(), SPEC_VKEY);
    assert_eq!(SPEC_VKEY.parse::<Verifier>().unwrap(), v);
}

#[test]
fn spec_note_verifies_and_formats_back() {
    let v = Verifier::parse(SPEC_VKEY).unwrap();
    let note = Note::parse(SPEC_NOTE).unwrap();
    assert_eq!(note.text, "This is an example message.\n");
    assert_eq!(note.signatures.len(), 1);
    assert_eq!(note.signatures[0].name, "example.com/foo");
    assert_eq!(note.signatures[0].key_id, 0x530d_903a);
    assert_eq!(note.signatures[0].signature.len(), 64);
    assert_eq!(note.to_string(), SPEC_NOTE);
    let verifiers = [v];
    assert_eq!(verify(&note, &verifiers).unwrap(), vec!["example.com/foo"]);
    assert_eq!(open(SPEC_NOTE, &verifiers).unwrap(), note);
}

#[test]
fn spec_intro_note_splits_at_the_last_blank_line() {
    let note = Note::parse(SPEC_INTRO_NOTE).unwrap();
    assert_eq!(
        note.text,
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    );
    assert_eq!(note.signatures[0].name, "quasimodo.example/salvatore");
    assert_eq!(note.to_string(), SPEC_INTRO_NOTE);
    // Its key is unknown: the signature is ignored, so nothing verifies.
    assert_eq!(verify(&note, &[Verifier::parse(SPEC_VKEY).unwrap()]), Err(NoteError::UnverifiedNote));
}

#[test]
fn go_vector_signature_is_reproduced_byte_for_byte() {
    let signer = go_signer();
    assert_eq!(signer.key_id(), 0xc74f_20a3);
    assert_eq!(signer.verifier_key(), GO_VKEY);
    assert_eq!(signer.verifier(), Verifier::parse(GO_VKEY).unwrap());
    let note = sign(GO_TEXT, &[&signer]).unwrap();
    assert_eq!(note.to_string(), go_note());
    assert_eq!(verify(&note, &[Verifier::parse(GO_VKEY).unwrap()]).unwrap(), vec!["PeterNeumann"]);
}

#[test]
fn go_vector_with_two_signatures() {
    let both = format!("{GO_TEXT}\n{GO_PETER_SIG}{GO_ENOCH_SIG}");
    let peter = Verifier::parse(GO_VKEY).unwrap();
    let enoch = Verifier::parse(GO_ENOCH_VKEY).unwrap();
    let note = Note::parse(&both).unwrap();
    assert_eq!(note.to_string(), both);
    assert_eq!(verify(&note, &[enoch.clone(), peter.clone()]).unwrap(), vec!["PeterNeumann", "EnochRoot"]);
    assert_eq!(verify(&note, std::slice::from_ref(&enoch)).unwrap(), vec!["EnochRoot"]);
    assert_eq!(verify(&note, &[Verifier::parse(SPEC_VKEY).unwrap()]), Err(NoteError::UnverifiedNote));
    assert_eq!(verify(&note, &[]), Err(NoteError::UnverifiedNote));

    // A cosignature added to a note.
    let mut note = sign(GO_TEXT, &[&go_signer()]).unwrap();
    let witness = Signer::generate("witness.example/w1").unwrap();
    note.add_signature(&witness).unwrap();
    let reparsed = Note::parse(&note.to_string()).unwrap();
    assert_eq!(verify(&reparsed, &[witness.verifier(), peter]).unwrap(), vec!["PeterNeumann", "witness.example/w1"]);
}

// ---- keys ---------------------------------------------------------------------------------------

#[test]
fn generated_key_round_trips_through_pkcs8_and_vkey() {
    let signer = Signer::generate("custody.example/audit").unwrap();
    let again = Signer::from_pkcs8("custody.example/audit", &signer.to_pkcs8().unwrap()).unwrap();
    assert_eq!(again.verifier_key(), signer.verifier_key());
    let v = Verifier::parse(&signer.verifier_key()).unwrap();
    assert_eq!(v, signer.verifier());
    assert_eq!(v, Verifier::new("custody.example/audit", *signer.public_key()).unwrap());
    assert_eq!(v.key_id(), ed25519_key_id("custody.example/audit", signer.public_key()));
    // Debug never shows key material.
    let debug = format!("{signer:?}");
    assert!(debug.contains("custody.example/audit") && !debug.contains("key_pair"), "{debug}");
}

#[test]
fn bad_keys_and_names_are_rejected() {
    assert_eq!(Signer::from_seed("a", &[0; 31]).unwrap_err(), NoteError::WrongSeedLength { got: 31 });
    assert_eq!(Signer::from_seed("a", &[0; 33]).unwrap_err(), NoteError::WrongSeedLength { got: 33 });
    assert!(matches!(Signer::from_pkcs8("a", b"not a key"), Err(NoteError::KeyRejected { .. })));
    for name in ["", "a+b", "a b", "a\u{a0}b", "a\u{3000}b", "a\tb", "a\u{1}b"] {
        assert!(
            matches!(Signer::from_seed(name, &[7; 32]), Err(NoteError::InvalidKeyName { .. })),
            "{name:?} accepted"
        );
        assert!(matches!(Verifier::new(name, [7; 32]), Err(NoteError::InvalidKeyName { .. })), "{name:?} accepted");
    }
    // Any non-space, non-plus Unicode is a valid name.
    Signer::from_seed("\u{2014}/ü", &[7; 32]).unwrap();
}

#[test]
fn malformed_verifier_keys_are_rejected() {
    let key = "AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    let reject = |vkey: &str| Verifier::parse(vkey).unwrap_err();
    assert!(matches!(reject("example.com/foo"), NoteError::MalformedVerifierKey { .. }));
    assert!(matches!(reject("example.com/foo+530d903a"), NoteError::MalformedVerifierKey { .. }));
    assert!(matches!(reject(&format!("example.com/foo+530D903A+{key}")), NoteError::MalformedVerifierKey { .. }));
    assert!(matches!(reject(&format!("example.com/foo+530d903+{key}")), NoteError::MalformedVerifierKey { .. }));
    assert!(matches!(reject(&format!("example.com/foo+0530d903a+{key}")), NoteError::MalformedVerifierKey { .. }));
    assert!(matches!(reject(&format!("example.com/foo+-30d903a+{key}")), NoteError::MalformedVerifierKey { .. }));
    assert!(matches!(reject(&format!("+530d903a+{key}")), NoteError::InvalidKeyName { .. }));
    assert!(matches!(reject(&format!("example.com/fo o+530d903a+{key}")), NoteError::InvalidKeyName { .. }));
    assert_eq!(
        reject(&format!("example.com/bar+530d903a+{key}")),
        NoteError::KeyIdMismatch { stated: 0x530d_903a, computed: ed25519_key_id("example.com/bar", &pk(key)) }
    );
    assert!(matches!(reject(&format!("example.com/foo+530d903b+{key}")), NoteError::KeyIdMismatch { .. }));
    // Base64: missing padding, garbage, empty.
    assert!(matches!(
        reject("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2"),
        NoteError::MalformedVerifierKey { .. }
    ));
    assert!(matches!(reject("example.com/foo+530d903a+!!!!"), NoteError::MalformedVerifierKey { .. }));
    assert!(matches!(reject("example.com/foo+530d903a+"), NoteError::MalformedVerifierKey { .. }));
    // Other signature types and key lengths.
    let mut material = STANDARD.decode(key).unwrap();
    material[0] = 0x02;
    assert_eq!(
        reject(&format!("example.com/foo+530d903a+{}", STANDARD.encode(&material))),
        NoteError::UnsupportedAlgorithm { algorithm: 2 }
    );
    material[0] = 0x01;
    material.pop();
    assert_eq!(
        reject(&format!("example.com/foo+530d903a+{}", STANDARD.encode(&material))),
        NoteError::WrongPublicKeyLength { got: 31 }
    );
    // Every strict substring of a valid key is rejected, every single-byte increment too.
    for i in 0..SPEC_VKEY.len() {
        for j in i + 1..=SPEC_VKEY.len() {
            if (i, j) != (0, SPEC_VKEY.len()) {
                assert!(Verifier::parse(&SPEC_VKEY[i..j]).is_err(), "{:?} accepted", &SPEC_VKEY[i..j]);
            }
        }
    }
    let mut bytes = SPEC_VKEY.as_bytes().to_vec();
    for i in 0..bytes.len() {
        bytes[i] += 1;
        assert!(Verifier::parse(std::str::from_utf8(&bytes).unwrap()).is_err());
        bytes[i] -= 1;
    }
}

fn pk(b64: &str) -> [u8; 32] {
    STANDARD.decode(b64).unwrap()[1..].try_into().unwrap()
}

// ---- round trips and tampering ------------------------------------------------------------------

#[test]
fn sign_format_parse_verify_round_trip() {
    let a = Signer::generate("log.example/a").unwrap();
    let b = Signer::generate("log.example/b").unwrap();
    for text in ["x\n", "\n", "\n\n", "two\nlines\n", "blank\n\nline\n", "ends with blank\n\n", "ünïcödé — ok\n"]
    {
        let note = sign(text, &[&a, &b]).unwrap();
        let formatted = note.to_string();
        let parsed = Note::parse(&formatted).unwrap();
        assert_eq!(parsed, note, "{text:?}");
        assert_eq!(parsed.text, text);
        assert_eq!(parsed.to_string(), formatted);
        assert_eq!(verify(&parsed, &[a.verifier(), b.verifier()]).unwrap(), vec!["log.example/a", "log.example/b"]);
        assert_eq!(verify(&parsed, &[b.verifier()]).unwrap(), vec!["log.example/b"]);
    }
}

#[test]
fn sign_rejects_bad_texts_and_signer_lists() {
    let a = Signer::generate("log.example/a").unwrap();
    assert_eq!(sign("no newline", &[&a]).unwrap_err(), NoteError::MissingFinalNewline);
    assert_eq!(sign("", &[&a]).unwrap_err(), NoteError::MissingFinalNewline);
    assert_eq!(sign("a\r\n", &[&a]).unwrap_err(), NoteError::ControlCharacter { line: 1, code: 0x0d });
    assert_eq!(sign("a\nb\tc\n", &[&a]).unwrap_err(), NoteError::ControlCharacter { line: 2, code: 0x09 });
    assert_eq!(sign("a\n", &[]).unwrap_err(), NoteError::NoSigners);
    let many = vec![&a; MAX_SIGNATURES + 1];
    assert_eq!(sign("a\n", &many).unwrap_err(), NoteError::TooManySignatures { max: MAX_SIGNATURES });
    assert_eq!(sign("a\n", &many[1..]).unwrap().signatures.len(), MAX_SIGNATURES);
}

#[test]
fn tampered_notes_are_rejected() {
    let peter = Verifier::parse(GO_VKEY).unwrap();
    let verifiers = [peter.clone()];
    let invalid = NoteError::InvalidSignature { name: "PeterNeumann".into(), key_id: 0xc74f_20a3 };

    // A flipped byte of the text.
    let mut note = Note::parse(&go_note()).unwrap();
    note.text = note.text.replace("cryptography", "cryptographY");
    assert_eq!(verify(&note, &verifiers), Err(invalid.clone()));
    assert_eq!(open(&go_note().replace("answer", "Answer"), &verifiers), Err(invalid.clone()));

    // Every flipped bit of the signature.
    let note = Note::parse(&go_note()).unwrap();
    for bit in 0..note.signatures[0].signature.len() * 8 {
        let mut bad = note.clone();
        bad.signatures[0].signature[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(verify(&bad, &verifiers), Err(invalid.clone()));
        // And through the text form.
        assert_eq!(open(&bad.to_string(), &verifiers), Err(invalid.clone()));
    }
    // Truncated or extended signature.
    let mut bad = note.clone();
    bad.signatures[0].signature.pop();
    assert_eq!(verify(&bad, &verifiers), Err(invalid.clone()));
    let mut bad = note.clone();
    bad.signatures[0].signature.push(0);
    assert_eq!(verify(&bad, &verifiers), Err(invalid.clone()));

    // Wrong key name or id: an unknown key, ignored, so nothing verifies.
    let mut bad = note.clone();
    bad.signatures[0].name = "PeterNeuman".into();
    assert_eq!(verify(&bad, &verifiers), Err(NoteError::UnverifiedNote));
    let mut bad = note.clone();
    bad.signatures[0].key_id ^= 1;
    assert_eq!(verify(&bad, &verifiers), Err(NoteError::UnverifiedNote));

    // The right name and id with another key: verified, and fails.
    let mut impostor = note.clone();
    let other = Signer::generate("PeterNeumann").unwrap();
    impostor.signatures[0].signature = other.sign_text(GO_TEXT).unwrap().signature;
    assert_eq!(verify(&impostor, &verifiers), Err(invalid.clone()));

    // A failing signature by a known key rejects the note even if another one verifies.
    let witness = Signer::generate("witness.example").unwrap();
    let mut mixed = sign(GO_TEXT, &[&witness]).unwrap();
    mixed.signatures.extend(impostor.signatures.clone());
    assert_eq!(verify(&mixed, &[witness.verifier(), peter.clone()]), Err(invalid.clone()));
    // Unknown signatures next to a good one are ignored.
    let mut extra = note.clone();
    extra.signatures.insert(0, other.sign_text(GO_TEXT).unwrap());
    extra.signatures[0].name = "someone.else".into();
    assert_eq!(verify(&extra, &verifiers).unwrap(), vec!["PeterNeumann"]);
    // Repeated good signatures verify, the name is reported once.
    let mut twice = note.clone();
    twice.signatures.push(twice.signatures[0].clone());
    assert_eq!(verify(&twice, &verifiers).unwrap(), vec!["PeterNeumann"]);
}

#[test]
fn duplicate_identical_verifiers_are_not_ambiguous() {
    // Verifiers always carry the key id computed from their name and key, so two different keys
    // with the same name and id need a 32-bit SHA-256 prefix collision; identical ones are fine.
    let note = Note::parse(&go_note()).unwrap();
    let peter = Verifier::parse(GO_VKEY).unwrap();
    assert_eq!(verify(&note, &[peter.clone(), peter.clone()]).unwrap(), vec!["PeterNeumann"]);
}

// ---- malformed notes ----------------------------------------------------------------------------

fn parse_err(s: &str) -> NoteError {
    Note::parse(s).unwrap_err()
}

#[test]
fn malformed_notes_are_rejected_precisely() {
    let sig = &GO_PETER_SIG["\u{2014} PeterNeumann ".len()..GO_PETER_SIG.len() - 1];
    let good = go_note();
    assert!(Note::parse(&good).is_ok());

    assert_eq!(parse_err(""), NoteError::MissingFinalNewline);
    assert_eq!(parse_err(&good[..good.len() - 1]), NoteError::MissingFinalNewline);
    // No blank line.
    assert_eq!(parse_err(&format!("{GO_TEXT}{GO_PETER_SIG}")), NoteError::MissingBlankLine);
    assert_eq!(parse_err("a\n"), NoteError::MissingBlankLine);
    // Nothing after the blank line.
    assert_eq!(parse_err(&format!("{GO_TEXT}\n")), NoteError::NoSignatures { line: 3 });
    assert_eq!(parse_err(&format!("{good}\n")), NoteError::NoSignatures { line: 5 });
    // CRLF, tabs and other control characters, with their line.
    assert_eq!(parse_err(&good.replace('\n', "\r\n")), NoteError::ControlCharacter { line: 1, code: 0x0d });
    assert_eq!(
        parse_err(&good.replace("PeterNeumann x", "PeterNeumann\tx")),
        NoteError::ControlCharacter { line: 4, code: 0x09 }
    );
    assert_eq!(parse_err(&good.replace("problem is", "problem\0is")), NoteError::ControlCharacter { line: 2, code: 0 });
    assert_eq!(parse_err(&format!("{good}\u{1b}")), NoteError::ControlCharacter { line: 5, code: 0x1b });
    // Trailing data after the signatures.
    assert_eq!(parse_err(&format!("{good}trailing")), NoteError::MissingFinalNewline);
    assert_eq!(parse_err(&format!("{good}trailing\n")), NoteError::MissingEmDash { line: 5 });
    assert_eq!(parse_err(&format!("{good} \n")), NoteError::MissingEmDash { line: 5 });
    // Dash look-alikes, missing or extra spaces.
    for prefix in ["- ", "-- ", "\u{2013} ", "\u{2015} ", "\u{2014}", " \u{2014} ", "\u{2014}\u{a0}"] {
        let s = format!("{GO_TEXT}\n{prefix}PeterNeumann {sig}\n");
        assert_eq!(parse_err(&s), NoteError::MissingEmDash { line: 4 }, "{prefix:?}");
    }
    assert_eq!(parse_err(&format!("{GO_TEXT}\n\u{2014} PeterNeumann\n")), NoteError::MissingSignature { line: 4 });
    assert!(matches!(parse_err(&format!("{GO_TEXT}\n\u{2014}  {sig}\n")), NoteError::SignatureKeyName { line: 4, .. }));
    assert!(matches!(
        parse_err(&format!("{GO_TEXT}\n\u{2014} Peter+Neumann {sig}\n")),
        NoteError::SignatureKeyName { line: 4, .. }
    ));
    assert!(matches!(
        parse_err(&format!("{GO_TEXT}\n\u{2014} Peter\u{2003}Neumann {sig}\n")),
        NoteError::SignatureKeyName { line: 4, .. }
    ));
    assert_eq!(
        parse_err(&format!("{GO_TEXT}\n\u{2014} PeterNeumann {sig} \n")),
        NoteError::SignatureBase64 { line: 4 }
    );
    assert_eq!(
        parse_err(&format!("{GO_TEXT}\n\u{2014} PeterNeumann  {sig}\n")),
        NoteError::SignatureBase64 { line: 4 }
    );
    // Base64: missing padding, bad characters, URL alphabet, non-canonical trailing bits.
    let unpadded = sig.trim_end_matches('=');
    assert_eq!(
        parse_err(&format!("{GO_TEXT}\n\u{2014} PeterNeumann {unpadded}\n")),
        NoteError::SignatureBase64 { line: 4 }
    );
    let url = sig.replace('/', "_").replace('+', "-");
    assert_eq!(parse_err(&format!("{GO_TEXT}\n\u{2014} PeterNeumann {url}\n")), NoteError::SignatureBase64 { line: 4 });
    // The signature ends "AM=": 'M' leaves its two low bits zero, 'N' sets one (non-canonical).
    let noncanonical = format!("{}N=", &sig[..sig.len() - 2]);
    assert_eq!(
        parse_err(&format!("{GO_TEXT}\n\u{2014} PeterNeumann {noncanonical}\n")),
        NoteError::SignatureBase64 { line: 4 }
    );
    // Too short to hold a key id and a signature.
    for len in 0..=4 {
        let blob = STANDARD.encode(vec![1u8; len]);
        assert_eq!(
            parse_err(&format!("{GO_TEXT}\n\u{2014} PeterNeumann {blob}\n")),
            NoteError::SignatureTooShort { line: 4, len }
        );
    }
    // An empty line among the signatures makes the later part the signatures, the earlier text.
    let s = format!("{GO_TEXT}\n{GO_PETER_SIG}\n{GO_PETER_SIG}");
    let note = Note::parse(&s).unwrap();
    assert_eq!(note.text, format!("{GO_TEXT}\n{GO_PETER_SIG}"));
    assert_eq!(note.to_string(), s);
}

#[test]
fn signature_count_limit() {
    let line = GO_PETER_SIG;
    let at_limit = format!("{GO_TEXT}\n{}", line.repeat(MAX_SIGNATURES));
    let note = Note::parse(&at_limit).unwrap();
    assert_eq!(note.signatures.len(), MAX_SIGNATURES);
    assert_eq!(note.to_string(), at_limit);
    let over = format!("{GO_TEXT}\n{}", line.repeat(MAX_SIGNATURES + 1));
    assert_eq!(parse_err(&over), NoteError::TooManySignatures { max: MAX_SIGNATURES });
    let mut big = note.clone();
    big.signatures.push(big.signatures[0].clone());
    assert_eq!(verify(&big, &[Verifier::parse(GO_VKEY).unwrap()]), Err(NoteError::TooManySignatures { max: 100 }));
    const { assert!(MAX_SIGNATURES >= 16) };
}

#[test]
fn bytes_must_be_utf8() {
    assert_eq!(Note::parse_bytes(go_note().as_bytes()).unwrap(), Note::parse(&go_note()).unwrap());
    let mut bytes = go_note().into_bytes();
    bytes[GO_TEXT.len() - 3] = 0xff;
    assert_eq!(Note::parse_bytes(&bytes).unwrap_err(), NoteError::NotUtf8 { line: 2 });
}

#[test]
fn error_messages_are_lower_case_and_name_the_line() {
    let e = parse_err(&format!("{}trailing\n", go_note()));
    assert_eq!(e.to_string(), "signature line 5 does not start with an em dash (U+2014) and a space");
    let e = parse_err("a\r\n\n");
    assert_eq!(e.to_string(), "control character U+000D on line 1");
}

#[test]
fn signature_line_display() {
    let s = NoteSignature { name: "n".into(), key_id: 0x0102_0304, signature: vec![5] };
    assert_eq!(s.to_string(), "\u{2014} n AQIDBAU=");
}

// ---- properties ---------------------------------------------------------------------------------

/// Strings built from pieces that reach deep into the parser.
fn notey_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n".to_owned()),
        Just("\n\n".to_owned()),
        Just("\u{2014} ".to_owned()),
        Just("\u{2014}".to_owned()),
        Just(" ".to_owned()),
        Just("+".to_owned()),
        Just("=".to_owned()),
        Just("PeterNeumann ".to_owned()),
        Just(GO_PETER_SIG.to_owned()),
        Just(GO_TEXT.to_owned()),
        "[A-Za-z0-9+/=]{1,12}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Valid notes, with arbitrary (unverifiable) signatures.
fn valid_note() -> impl Strategy<Value = String> {
    let text_line = "[^\\x00-\\x1f]{0,20}";
    let name = "[^\\s+\\x00-\\x1f\\x7f-\\x9f]{1,12}";
    let signature = (name, any::<u32>(), prop::collection::vec(any::<u8>(), 1..80))
        .prop_map(|(name, key_id, signature)| NoteSignature { name, key_id, signature });
    (prop::collection::vec(text_line, 1..6), prop::collection::vec(signature, 1..=MAX_SIGNATURES.min(20))).prop_map(
        |(lines, signatures)| {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            Note { text, signatures }.to_string()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_and_accepted_notes_format_back(s in any::<String>()) {
        if let Ok(note) = Note::parse(&s) {
            prop_assert_eq!(note.to_string(), s);
        }
    }

    #[test]
    fn parse_never_panics_on_note_like_strings(s in notey_string()) {
        if let Ok(note) = Note::parse(&s) {
            prop_assert_eq!(note.to_string(), s.clone());
            let _ = verify(&note, &[Verifier::parse(GO_VKEY).unwrap()]);
        }
        let _ = Verifier::parse(&s);
    }

    #[test]
    fn valid_notes_round_trip(s in valid_note()) {
        let note = Note::parse(&s).unwrap();
        prop_assert_eq!(note.to_string(), s);
    }

    #[test]
    fn parse_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Note::parse_bytes(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn signed_notes_verify_and_tampering_fails(text in "([^\\x00-\\x1f]{0,30}\n){1,4}", seed in any::<[u8; 32]>(), flip in any::<usize>()) {
        let signer = Signer::from_seed("prop.example/key", &seed).unwrap();
        let note = sign(&text, &[&signer]).unwrap();
        let parsed = Note::parse(&note.to_string()).unwrap();
        prop_assert_eq!(&parsed, &note);
        let verifiers = [Verifier::parse(&signer.verifier_key()).unwrap()];
        prop_assert_eq!(verify(&parsed, &verifiers).unwrap(), vec!["prop.example/key"]);
        let mut bad = parsed.clone();
        let bytes = bad.signatures[0].signature.len();
        bad.signatures[0].signature[(flip / 8) % bytes] ^= 1 << (flip % 8);
        let tampered = matches!(verify(&bad, &verifiers), Err(NoteError::InvalidSignature { .. }));
        prop_assert!(tampered);
    }
}

#[test]
fn go_private_key_string_parses_and_formats_back() {
    let skey = format!("PRIVATE+KEY+PeterNeumann+c74f20a3+{GO_SKEY_MATERIAL}");
    let signer = Signer::parse_private_key(&skey).unwrap();
    assert_eq!(signer.verifier_key(), GO_VKEY);
    assert_eq!(signer.private_key().unwrap(), skey);
    assert_eq!(format!("{}\n", signer.sign_text(GO_TEXT).unwrap()), GO_PETER_SIG);
    let generated = Signer::generate("custody.example/audit").unwrap();
    let reparsed = Signer::parse_private_key(&generated.private_key().unwrap()).unwrap();
    assert_eq!(reparsed.verifier_key(), generated.verifier_key());
}

#[test]
fn malformed_private_key_strings_are_refused_without_echoing_the_key() {
    let good = format!("PRIVATE+KEY+PeterNeumann+c74f20a3+{GO_SKEY_MATERIAL}");
    for bad in [
        good.replace("PRIVATE+KEY+", ""),
        good.replace("c74f20a3", "c74f20a4"),
        good.replace("c74f20a3", "c74f20"),
        good.replace("+AYEK", "+!YEK"),
        good.replace("+AYEK", "+AoEK"),
        "PRIVATE+KEY+PeterNeumann".to_owned(),
    ] {
        let err = Signer::parse_private_key(&bad).unwrap_err().to_string();
        assert!(!err.contains(GO_SKEY_MATERIAL) && !err.contains("YEKFALV"), "{err}");
    }
}
