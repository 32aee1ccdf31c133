#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Checkpoints: the C2SP tlog-checkpoint example, strict parsing, signing and opening.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custody_audit::{Checkpoint, CheckpointError, EMPTY_ROOT, Hash, Note, NoteError, Signer, leaf_hash, root};
use proptest::prelude::*;

// The example of c2sp.org/tlog-checkpoint, verbatim (its key is not given).
const SPEC_CHECKPOINT: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

const ROOT_B64: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

fn err(text: &str) -> CheckpointError {
    Checkpoint::parse_note_text(text).unwrap_err()
}

#[test]
fn spec_example_parses() {
    let note = Note::parse(SPEC_CHECKPOINT).unwrap();
    assert_eq!(note.to_string(), SPEC_CHECKPOINT);
    let checkpoint = Checkpoint::from_note(&note).unwrap();
    assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size, 20_852_163);
    assert_eq!(STANDARD.encode(checkpoint.root), ROOT_B64);
    assert!(checkpoint.extensions.is_empty());
    assert_eq!(checkpoint.to_note_text(), note.text);
    assert_eq!(note.signatures[0].name, "example.com/behind-the-sofa");
}

#[test]
fn note_text_round_trips() {
    let leaves: Vec<Hash> = (0u8..7).map(|i| leaf_hash(&[i])).collect();
    let mut checkpoint = Checkpoint::new("custody.example/audit", 7, root(&leaves)).unwrap();
    let text = checkpoint.to_note_text();
    assert_eq!(text, format!("custody.example/audit\n7\n{}\n", STANDARD.encode(root(&leaves))));
    assert_eq!(Checkpoint::parse_note_text(&text).unwrap(), checkpoint);

    checkpoint.extensions = vec!["ext one".into(), "— two +".into()];
    let text = checkpoint.to_note_text();
    assert!(text.ends_with("\next one\n— two +\n"));
    assert_eq!(Checkpoint::parse_note_text(&text).unwrap(), checkpoint);

    let empty = Checkpoint::new("o", 0, EMPTY_ROOT).unwrap();
    assert_eq!(empty.to_note_text(), "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
    assert_eq!(Checkpoint::parse_note_text(&empty.to_note_text()).unwrap(), empty);

    let max = Checkpoint::new("o", u64::MAX, EMPTY_ROOT).unwrap();
    assert_eq!(Checkpoint::parse_note_text(&max.to_note_text()).unwrap(), max);
}

#[test]
fn malformed_texts_are_rejected_precisely() {
    let r = ROOT_B64;
    assert_eq!(err(""), CheckpointError::MissingFinalNewline);
    assert_eq!(err(&format!("o\n1\n{r}")), CheckpointError::MissingFinalNewline);
    assert_eq!(err("\n"), CheckpointError::TooFewLines { got: 1 });
    assert_eq!(err("o\n1\n"), CheckpointError::TooFewLines { got: 2 });
    assert_eq!(err(&format!("\n1\n{r}\n")), CheckpointError::EmptyOrigin);
    // Sizes.
    for (size, reason) in [
        ("", "is empty"),
        ("01", "has a leading zero"),
        ("00", "has a leading zero"),
        ("+1", "is not a decimal number"),
        ("-1", "is not a decimal number"),
        (" 1", "is not a decimal number"),
        ("1 ", "is not a decimal number"),
        ("1.0", "is not a decimal number"),
        ("0x10", "is not a decimal number"),
        ("١", "is not a decimal number"),
        ("18446744073709551616", "does not fit in 64 bits"),
        ("99999999999999999999999", "does not fit in 64 bits"),
    ] {
        assert_eq!(err(&format!("o\n{size}\n{r}\n")), CheckpointError::InvalidSize { reason }, "{size:?}");
    }
    // Roots.
    assert_eq!(err("o\n1\n\n"), CheckpointError::WrongRootLength { got: 0 });
    assert_eq!(err(&format!("o\n1\n{}\n", r.trim_end_matches('='))), CheckpointError::RootBase64);
    assert_eq!(err(&format!("o\n1\n{r} \n")), CheckpointError::RootBase64);
    assert_eq!(err(&format!("o\n1\n{}\n", r.replace('/', "_"))), CheckpointError::RootBase64);
    // "...q2I=": 'I' leaves its two low bits zero, 'J' sets one (non-canonical).
    assert_eq!(err(&format!("o\n1\n{}\n", r.replace("q2I=", "q2J="))), CheckpointError::RootBase64);
    assert_eq!(err(&format!("o\n1\n{}\n", STANDARD.encode([0u8; 31]))), CheckpointError::WrongRootLength { got: 31 });
    assert_eq!(err(&format!("o\n1\n{}\n", STANDARD.encode([0u8; 33]))), CheckpointError::WrongRootLength { got: 33 });
    // Extensions.
    assert_eq!(err(&format!("o\n1\n{r}\n\n")), CheckpointError::EmptyExtension { line: 4 });
    assert_eq!(err(&format!("o\n1\n{r}\na\n\nb\n")), CheckpointError::EmptyExtension { line: 5 });
    // Control characters, CRLF.
    assert_eq!(err(&format!("o\r\n1\r\n{r}\r\n")), CheckpointError::ControlCharacter { line: 1, code: 0x0d });
    assert_eq!(err(&format!("o\n1\n{r}\nx\ty\n")), CheckpointError::ControlCharacter { line: 4, code: 0x09 });
    // Messages.
    assert_eq!(err("o\n01\nx\n").to_string(), "tree size (line 2) has a leading zero");
    assert_eq!(err(&format!("o\n1\n{r}\n\n")).to_string(), "extension line 4 is empty");
}

#[test]
fn invalid_structs_are_refused() {
    assert_eq!(Checkpoint::new("", 1, EMPTY_ROOT).unwrap_err(), CheckpointError::EmptyOrigin);
    assert_eq!(
        Checkpoint::new("a\nb", 1, EMPTY_ROOT).unwrap_err(),
        CheckpointError::ControlCharacter { line: 1, code: 0x0a }
    );
    let mut c = Checkpoint::new("o", 1, EMPTY_ROOT).unwrap();
    c.extensions = vec!["ok".into(), String::new()];
    assert_eq!(c.validate().unwrap_err(), CheckpointError::EmptyExtension { line: 5 });
    let signer = Signer::generate("o").unwrap();
    assert_eq!(c.sign(&[&signer]).unwrap_err(), CheckpointError::EmptyExtension { line: 5 });
    c.extensions = vec!["a\nb".into()];
    assert_eq!(c.validate().unwrap_err(), CheckpointError::ControlCharacter { line: 4, code: 0x0a });
    c.extensions.clear();
    assert_eq!(c.sign(&[]).unwrap_err(), CheckpointError::Note(NoteError::NoSigners));
}

#[test]
fn sign_and_open() {
    let log = Signer::generate("custody.example/audit").unwrap();
    let witness = Signer::generate("witness.example").unwrap();
    let checkpoint = Checkpoint::new("custody.example/audit", 3, leaf_hash(b"x")).unwrap();
    let note = checkpoint.sign(&[&log, &witness]).unwrap();
    let signed = note.to_string();
    assert_eq!(Checkpoint::open(&signed, &[log.verifier()]).unwrap(), checkpoint);
    assert_eq!(Checkpoint::open(&signed, &[witness.verifier()]).unwrap(), checkpoint);
    assert_eq!(
        Checkpoint::open(&signed, &[Signer::generate("other").unwrap().verifier()]).unwrap_err(),
        CheckpointError::Note(NoteError::UnverifiedNote)
    );
    // A changed size no longer verifies.
    let forged = signed.replacen("\n3\n", "\n4\n", 1);
    assert!(matches!(
        Checkpoint::open(&forged, &[log.verifier()]),
        Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
    ));
    // A signed note whose text is not a checkpoint.
    let not_a_checkpoint = custody_audit::sign("hello\n", &[&log]).unwrap().to_string();
    assert_eq!(
        Checkpoint::open(&not_a_checkpoint, &[log.verifier()]).unwrap_err(),
        CheckpointError::TooFewLines { got: 1 }
    );
}

fn checkpoint_strategy() -> impl Strategy<Value = Checkpoint> {
    ("[^\\x00-\\x1f]{1,30}", any::<u64>(), any::<[u8; 32]>(), prop::collection::vec("[^\\x00-\\x1f]{1,20}", 0..4))
        .prop_map(|(origin, size, root, extensions)| Checkpoint { origin, size, root, extensions })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_and_round_trips(s in any::<String>()) {
        if let Ok(c) = Checkpoint::parse_note_text(&s) {
            prop_assert_eq!(c.to_note_text(), s);
        }
    }

    #[test]
    fn parse_never_panics_on_checkpoint_like_strings(s in "([0-9a-z+/=]{0,8}\n?){0,6}") {
        if let Ok(c) = Checkpoint::parse_note_text(&s) {
            prop_assert_eq!(c.to_note_text(), s);
        }
    }

    #[test]
    fn valid_checkpoints_round_trip(c in checkpoint_strategy()) {
        prop_assert_eq!(c.validate(), Ok(()));
        prop_assert_eq!(Checkpoint::parse_note_text(&c.to_note_text()).unwrap(), c);
    }
}
