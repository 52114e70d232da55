//! Arbitrary bytes as a capture file, through everything `synack replay` does: the pcap /
//! pcapng reader, decode, the exchange tracker, the verdicts, and both renderers. Nothing
//! may panic or hang, and the JSON renderer must write one valid JSON object per line.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use synack_core::capfile::CaptureReader;
use synack_core::decode::decode;
use synack_core::exchange::Tracker;
use synack::report::ScanReport;
use synack::report::text::TextOptions;
use synack_core::verdict::judge_all;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) =
        CaptureReader::from_reader(Box::new(Cursor::new(data.to_vec())), "fuzz".to_owned())
    else {
        return;
    };
    let mut tracker = Tracker::new();
    let mut warnings = Vec::new();
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                if let Ok(obs) = decode(&frame) {
                    tracker.observe(frame.ts, &obs, |_| true);
                }
            }
            Ok(None) => break,
            Err(e) => {
                warnings.push(e.to_string());
                break;
            }
        }
    }
    warnings.extend(reader.warnings());
    let report = ScanReport {
        verdicts: judge_all(&tracker.snapshot(), None),
        captured: true,
        warnings,
        ..ScanReport::default()
    };

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
