//! `ferry check`: validates a manifest directory and reports every problem.

use crate::cli::CheckArgs;
use ferry_k8s::manifest::{ManifestSet, Severity};
use std::process::ExitCode;

pub fn run(args: &CheckArgs) -> ExitCode {
    let mut set = ManifestSet::new(&args.manifests);
    if let Err(error) = set.rescan() {
        eprintln!("ferry check: {}: {error}", args.manifests.display());
        return ExitCode::from(crate::EXIT_USAGE);
    }
    let problems = set.problems();
    let mut errors = 0;
    for problem in &problems {
        let label = match problem.severity {
            Severity::Error => {
                errors += 1;
                "error"
            }
            Severity::Warning => "warning",
        };
        println!("{label}: {problem}");
    }
    println!(
        "{}: {} objects, {errors} errors, {} warnings",
        args.manifests.display(),
        set.objects().len(),
        problems.len() - errors
    );
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
