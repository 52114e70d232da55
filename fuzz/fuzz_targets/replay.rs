//! Arbitrary bytes as a capture file, through everything `synack replay` does: the pcap /
//! pcapng reader, decode, the streaming tracker, the verdicts, and both renderers. Nothing
//! may panic or hang, and the JSON renderer must write one valid JSON object per line.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use synack::report::text::TextOptions;
use synack_core::capfile::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) =
        CaptureReader::from_reader(Box::new(Cursor::new(data.to_vec())), "fuzz".to_owned())
    else {
        return;
    };
    // The whole streaming replay: decode, capture-clock timeouts, per-target judging.
    let report = synack::replay::replay(vec![reader]);

    let mut json = Vec::new();
    synack::report::json::write(&mut json, &report).expect("write to a Vec");
    let json = String::from_utf8(json).expect("JSON is UTF-8");
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(
        lines.len(),
        report.verdicts.len() + 1,
        "one line per port + summary"
    );
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert!(v.is_object());
    }

    for opts in [
        TextOptions::default(),
        TextOptions {
            unicode: false,
            show_all: true,
            collapse_over: 0,
            evidence: true,
            ..TextOptions::default()
        },
    ] {
        let mut text = Vec::new();
        synack::report::text::write(&mut text, &report, &opts).expect("write to a Vec");
        String::from_utf8(text).expect("text is UTF-8");
    }
});
