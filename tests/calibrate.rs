//! `llmbench calibrate` with tiny levels: the table's shape and the two limit lines. Speed is not
//! asserted (that belongs to benches); only that each step ran, against the in-process mock.

use std::process::Command;

/// Calibrate runs its steps in memory: with its working folder and its temp folder read-only
/// (their permission bits; root ignores those, so the check is also that both stay empty) it
/// still measures, and writes nothing anywhere.
#[test]
fn calibrate_writes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let cwd = tempfile::tempdir().unwrap();
    let tmp_parent = tempfile::tempdir().unwrap();
    let tmp = tmp_parent.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let read_only = std::fs::Permissions::from_mode(0o555);
    for d in [cwd.path(), tmp.as_path(), tmp_parent.path()] {
        std::fs::set_permissions(d, read_only.clone()).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args([
            "calibrate",
            "--streams",
            "1",
            "--rates",
            "50",
            "--duration",
            "0.3",
        ])
        .current_dir(cwd.path())
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    for d in [cwd.path(), tmp.as_path(), tmp_parent.path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.lines().any(|l| l.starts_with("rate ")), "{stdout}");
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(tmp_parent.path()).unwrap().count(), 1);
}

#[test]
fn calibrate_prints_one_line_per_step_and_the_limits_found() {
    let out = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args([
            "calibrate",
            "--streams",
            "1,4",
            "--rates",
            "20,50",
            "--duration",
            "0.5",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[1].starts_with("step") && lines[1].contains("added p50"),
        "{stdout}"
    );
    let steps: Vec<Vec<&str>> = lines
        .iter()
        .filter(|l| l.starts_with("streams ") || l.starts_with("rate "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(steps.len(), 4, "{stdout}");
    let levels: Vec<&str> = steps.iter().map(|s| s[1]).collect();
    assert_eq!(levels, ["1", "4", "20/s", "50/s"]);
    for s in &steps {
        // kind, level, requests, achieved, late p50/p99, added p50/p99, errors, sustained
        assert_eq!(s.len(), 10, "{s:?}");
        let requests: u64 = s[2].parse().unwrap();
        assert!(requests > 0, "{s:?}");
        for v in &s[4..8] {
            let ms: f64 = v.parse().unwrap();
            assert!(ms.is_finite() && ms >= -1.0, "{s:?}");
        }
        assert_eq!(s[8], "0", "the mock injects no faults: {s:?}");
        assert!(s[9] == "yes" || s[9] == "no", "{s:?}");
    }
    // Closed-loop steps have no achieved rate; open-loop ones do, and sent about rate × 0.5 s.
    assert_eq!(steps[0][3], "-");
    assert!(steps[2][3].ends_with("/s"));
    let sent: u64 = steps[3][2].parse().unwrap();
    assert!((20..=30).contains(&sent), "50/s for 0.5 s sent {sent}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("highest rate sustained"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("most streams sustained"))
    );
}

#[test]
fn calibrate_rejects_a_zero_level_with_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .args([
            "calibrate",
            "--streams",
            "0",
            "--rates",
            "10",
            "--duration",
            "0.2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--streams"));
}
