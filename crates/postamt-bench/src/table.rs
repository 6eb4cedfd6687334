//! Puts the figures of several servers side by side: `postamt-bench table results.jsonl`.
//!
//! Results are grouped by their `case` (a name the caller gives every run, the same for both
//! servers); within a case, the run labelled `postamt` is compared with every other label.
//! A case measured several times pairs the n-th run of each label.
//! The ratio says how many times better postamt did: above 1 better, below 1 worse, whichever
//! way the figure counts (throughput higher, latency, memory and time lower).

use crate::stats::{Figures, better_higher};

/// The figures shown, in this order, when a result has them.
pub const HEADLINE: &[&str] = &[
    "msgs_per_s",
    "accepted_msgs_per_s",
    "mb_per_s",
    "ops_per_s",
    "op_p99_ms",
    "message_p99_ms",
    "fetch_body_p99_ms",
    "retr_p99_ms",
    "rss_per_conn_kb",
    "pss_per_conn_kb",
    "startup_ms",
];

/// A Markdown table of `results` (one JSON object per line; other lines are ignored).
pub fn render(results: &str, ours: &str) -> String {
    let figures: Vec<Figures> = results.lines().filter_map(Figures::from_json).collect();
    let text = |f: &Figures, key: &str| f.get(key).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let mut cases: Vec<String> = Vec::new();
    for f in &figures {
        let case = text(f, "case");
        if !case.is_empty() && !cases.contains(&case) {
            cases.push(case);
        }
    }
    let mut out = String::from(
        "| case | figure | postamt | peer | peer's figure | ratio |\n|---|---|---:|---|---:|---:|\n",
    );
    for case in cases {
        let runs: Vec<&Figures> = figures.iter().filter(|f| text(f, "case") == case).collect();
        let mine_all: Vec<&&Figures> = runs.iter().filter(|f| text(f, "label") == ours).collect();
        for (n, mine) in mine_all.into_iter().enumerate() {
            // The n-th run of every other label.
            let mut seen: Vec<(String, usize)> = Vec::new();
            let peers: Vec<&&Figures> = runs
                .iter()
                .filter(|f| {
                    let label = text(f, "label");
                    if label == ours {
                        return false;
                    }
                    let count = match seen.iter_mut().find(|(l, _)| *l == label) {
                        Some((_, c)) => {
                            *c += 1;
                            *c
                        }
                        None => {
                            seen.push((label, 0));
                            0
                        }
                    };
                    count == n
                })
                .collect();
            rows(&mut out, &case, mine, &peers);
        }
    }
    out
}

/// The rows of one postamt run against its peers.
fn rows(out: &mut String, case: &str, mine: &Figures, peers: &[&&Figures]) {
    let label = |f: &Figures| f.get("label").and_then(|v| v.as_str()).unwrap_or("").to_string();
    for key in HEADLINE {
        let Some(value) = mine.get(key).and_then(|v| v.as_f64()) else {
            continue;
        };
        if peers.is_empty() {
            out.push_str(&format!("| {case} | {key} | {} | | | |\n", number(value)));
        }
        for peer in peers {
            let (theirs, ratio) = match peer.get(key).and_then(|v| v.as_f64()) {
                Some(theirs) => (number(theirs), ratio(key, value, theirs)),
                None => (String::new(), String::new()),
            };
            out.push_str(&format!(
                "| {case} | {key} | {} | {} | {theirs} | {ratio} |\n",
                number(value),
                label(peer)
            ));
        }
    }
}

fn number(v: f64) -> String {
    if v.abs() >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

/// How many times better `ours` is than `theirs` for the figure `key`.
fn ratio(key: &str, ours: f64, theirs: f64) -> String {
    let r = match better_higher(key) {
        Some(true) if theirs > 0.0 => ours / theirs,
        Some(false) if ours > 0.0 => theirs / ours,
        _ => return String::new(),
    };
    format!("{r:.2}x")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_by_side() {
        let results = r#"
{"workload":"smtp","case":"smtp 10k x20","label":"postamt","msgs_per_s":1000.0,"message_p99_ms":10.0}
not json
{"workload":"smtp","case":"smtp 10k x20","label":"postfix+dovecot","msgs_per_s":330.0,"message_p99_ms":40.0}
{"workload":"memory","case":"idle 1000","label":"postamt","rss_per_conn_kb":6.5}
{"workload":"memory","case":"idle 1000","label":"dovecot","rss_per_conn_kb":520.0}
{"workload":"startup","case":"start","label":"postamt","startup_ms":10.0}
{"workload":"startup","case":"start","label":"dovecot","startup_ms":30.0}
{"workload":"startup","case":"start","label":"postamt","startup_ms":20.0}
{"workload":"startup","case":"start","label":"dovecot","startup_ms":30.0}
"#;
        let table = render(results, "postamt");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 7, "{table}");
        assert_eq!(lines[2], "| smtp 10k x20 | msgs_per_s | 1000 | postfix+dovecot | 330 | 3.03x |");
        assert_eq!(lines[3], "| smtp 10k x20 | message_p99_ms | 10.00 | postfix+dovecot | 40.00 | 4.00x |");
        assert_eq!(lines[4], "| idle 1000 | rss_per_conn_kb | 6.50 | dovecot | 520 | 80.00x |");
        assert_eq!(lines[5], "| start | startup_ms | 10.00 | dovecot | 30.00 | 3.00x |");
        assert_eq!(lines[6], "| start | startup_ms | 20.00 | dovecot | 30.00 | 1.50x |");
    }
}
