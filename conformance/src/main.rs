//! `oci-conformance`: runs the OCI runtime conformance cases against a runtime
//! binary and prints one line per case, then `N passed, N failed, N skipped`.

mod bundle;
mod cases;
mod console;
mod exec;
mod harness;
mod host;
mod known;
mod options;
mod report;
mod runner;

use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = match options::Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("oci-conformance: {e}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    let cases = cases::all();
    let selected: Vec<&harness::Case> = cases
        .iter()
        .filter(|c| {
            opts.filters.is_empty() || opts.filters.iter().any(|f| c.name.contains(f.as_str()))
        })
        .collect();
    if opts.list {
        for c in &selected {
            println!("{}", c.name);
        }
        return ExitCode::SUCCESS;
    }
    let mut results = Vec::new();
    for (path, name) in &opts.runtimes {
        match runner::run(&opts, path, name, &selected) {
            Ok(t) => results.push((name.clone(), t)),
            Err(e) => {
                eprintln!("oci-conformance: {name}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if results.len() > 1 {
        print_table(&selected, &results);
    }
    let sum = |f: fn(&runner::Tally) -> usize| results.iter().map(|(_, t)| f(t)).sum::<usize>();
    let failed = sum(|t| t.failed);
    println!(
        "{} passed, {failed} failed, {} skipped",
        sum(|t| t.passed),
        sum(|t| t.skipped)
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One row per case that is not `ok` everywhere, one column per runtime.
fn print_table(cases: &[&harness::Case], results: &[(String, runner::Tally)]) {
    let width = cases.iter().map(|c| c.name.len()).max().unwrap_or(4);
    let cell = |name: &str, v: &str| format!(" {v:w$} |", w = name.len().max(8));
    let mut head = format!("| {:width$} |", "case");
    let mut rule = format!("|{}|", "-".repeat(width + 2));
    for (name, _) in results {
        head.push_str(&cell(name, name));
        rule.push_str(&format!("{}|", "-".repeat(name.len().max(8) + 2)));
    }
    println!("{head}\n{rule}");
    let mut all_ok = 0;
    for (i, c) in cases.iter().enumerate() {
        let verdicts: Vec<&str> = results
            .iter()
            .map(|(_, t)| t.verdicts.get(i).copied().unwrap_or(""))
            .collect();
        if verdicts.iter().all(|v| *v == "ok") {
            all_ok += 1;
            continue;
        }
        let mut row = format!("| {:width$} |", c.name);
        for ((name, _), v) in results.iter().zip(verdicts) {
            row.push_str(&cell(name, v));
        }
        println!("{row}");
    }
    let mut row = format!("| {:width$} |", format!("({all_ok} other cases)"));
    for (name, _) in results {
        row.push_str(&cell(name, "ok"));
    }
    println!("{row}");
}
