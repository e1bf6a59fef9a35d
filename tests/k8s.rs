//! `llmbench k8s` and `deploy/k8s/`: the manifests are valid Kubernetes objects (checked
//! offline against the API schemas by `kubernetes-validate`, from PyPI), they carry the
//! workload byte for byte and never the API key, the example in `deploy/k8s/` is what the
//! command renders, and bad input exits 2 naming the flag.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::llmbench;
use serde_json::Value;

const START: &str = "2026-12-02T10:00:00Z";

/// `llmbench k8s ARGS`: (exit code, stdout, stderr).
fn k8s(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = llmbench()
        .current_dir(dir)
        .arg("k8s")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The YAML documents of a manifest file, as JSON values.
fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).unwrap()
}

/// `kubernetes-validate`: `LLMBENCH_K8S_VALIDATE`, else on `PATH`; `None` when absent (a
/// failure where `LLMBENCH_REQUIRE_K8S_VALIDATE=1`, as in CI).
fn validator() -> Option<PathBuf> {
    let path = std::env::var_os("LLMBENCH_K8S_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| "kubernetes-validate".into());
    if Command::new(&path).arg("--version").output().is_ok() {
        return Some(path);
    }
    assert!(
        std::env::var("LLMBENCH_REQUIRE_K8S_VALIDATE").as_deref() != Ok("1"),
        "kubernetes-validate is required (pip install kubernetes-validate) but not found"
    );
    eprintln!("skipped: kubernetes-validate not found (pip install kubernetes-validate)");
    None
}

/// Validates `files` strictly (unknown fields are errors) against the schemas it ships.
fn validate(files: &[PathBuf]) {
    let Some(validator) = validator() else { return };
    let out = Command::new(validator)
        .arg("--strict")
        .args(files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("ERROR"), "{text}");
}

/// A workload folder: a script that reads a dataset in a subfolder.
fn workload() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bench/data")).unwrap();
    std::fs::write(
        dir.path().join("bench/chat.rhai"),
        "// a \"quoted\" line, a tab\there, and a key-looking word: api-key\nlet d = dataset(\"data/prompts.jsonl\");\nrequests(4, 2.0, |i| d.pick(i));\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bench/data/prompts.jsonl"),
        "{\"prompt\": \"hello: world\\n---\\n\"}\n",
    )
    .unwrap();
    dir
}

#[test]
fn the_manifests_validate_and_carry_the_workload_byte_for_byte() {
    let dir = workload();
    let (code, yaml, err) = k8s(
        dir.path(),
        &[
            "--shards",
            "4",
            "--script",
            "bench/chat.rhai",
            "--file",
            "bench/data/prompts.jsonl",
            "--url",
            "http://vllm.default.svc:8000/v1",
            "--api-key-secret",
            "vllm-api-key",
            "--name",
            "chat-4x",
            "--start-at",
            START,
            "--",
            "--set",
            "rps=400",
            "--model",
            "it's a model",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let docs = documents(&yaml);
    assert_eq!(docs.len(), 3, "{yaml}");
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "Job", "Job"]);

    // The workload, exactly, mounted at the paths the script names.
    let data = &docs[0]["data"];
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
    assert_eq!(data["chat.rhai"], read("bench/chat.rhai"));
    assert_eq!(data["file-1"], read("bench/data/prompts.jsonl"));
    let items = &docs[1]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"];
    assert_eq!(items[1]["path"], "data/prompts.jsonl");

    // The shards: an Indexed Job of 4, each shard I of 4 from one start, the key by name.
    let shards = &docs[1]["spec"];
    assert_eq!(shards["completionMode"], "Indexed");
    assert_eq!(shards["completions"], 4);
    assert_eq!(shards["parallelism"], 4);
    let pod = &shards["template"]["spec"]["containers"][0];
    let command = pod["args"][0].as_str().unwrap();
    for part in [
        "llmbench 'chat.rhai' --shard \"$JOB_COMPLETION_INDEX\"/4",
        "--start-at '2026-12-02T10:00:00.000Z'",
        "--api-key-env LLMBENCH_API_KEY",
        "'--model' 'it'\\''s a model'",
        "--results \"$out\"",
    ] {
        assert!(command.contains(part), "{part} in {command}");
    }
    let key = &pod["env"][0]["valueFrom"]["secretKeyRef"];
    assert_eq!(key["name"], "vllm-api-key");
    assert_eq!(key["key"], "api-key");
    assert_eq!(pod["securityContext"]["readOnlyRootFilesystem"], true);
    // The merge waits for the four shards, then merges their folders.
    let merge = docs[2]["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    assert!(merge.contains("-ge 4 ]"), "{merge}");
    assert!(
        merge.contains("llmbench merge /results/chat-4x/shard-*"),
        "{merge}"
    );

    let file = dir.path().join("job.yaml");
    std::fs::write(&file, &yaml).unwrap();
    validate(&[file]);
}

#[test]
fn the_shipped_manifests_validate_and_the_example_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, yaml, err) = k8s(
        root,
        &[
            "--shards",
            "4",
            "--script",
            "scripts/quickstart.rhai",
            "--url",
            "http://vllm.default.svc:8000/v1",
            "--api-key-secret",
            "vllm-api-key",
            "--name",
            "quickstart",
            "--start-at",
            START,
            "--",
            "--set",
            "rps=40",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let example = root.join("deploy/k8s/example-job.yaml");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&example, &yaml).unwrap();
    }
    let shipped = std::fs::read_to_string(&example).unwrap_or_default();
    assert!(
        shipped == yaml,
        "deploy/k8s/example-job.yaml is not what `llmbench k8s` renders now; rerun with UPDATE_SNAPSHOTS=1"
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("deploy/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    validate(&files);
}

#[test]
fn a_default_start_is_in_the_future_and_names_the_run() {
    let dir = workload();
    let before = chrono::Utc::now();
    let (code, yaml, err) = k8s(
        dir.path(),
        &[
            "--shards",
            "2",
            "--script",
            "bench/chat.rhai",
            "--url",
            "https://llm.example.internal/v1",
            "--start-in",
            "90",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let docs = documents(&yaml);
    let name = docs[1]["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("llmbench-") && name.ends_with("-shards"),
        "{name}"
    );
    let command = docs[1]["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    let at = command.split("--start-at '").nth(1).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(&at[..at.find('\'').unwrap()]).unwrap();
    let ahead = (at.with_timezone(&chrono::Utc) - before).num_seconds();
    assert!((88..=92).contains(&ahead), "{ahead}");
    // Without a Secret no key is sent, and no env entry names one.
    assert!(!command.contains("--api-key-env"), "{command}");
    assert!(!yaml.contains("secretKeyRef"), "{yaml}");
}

#[test]
fn bad_input_exits_2_naming_the_flag_and_never_repeats_a_credential() {
    let dir = workload();
    let base = ["--shards", "2", "--script", "bench/chat.rhai"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--url", "http://ops:hunter2secret@vllm:8000/v1"],
            "--url",
        ),
        (
            vec!["--url", "http://vllm:8000/v1?api_key=hunter2secret"],
            "--url",
        ),
        (vec!["--url", "vllm:8000"], "--url"),
        (vec!["--url", "http://v/v1", "--name", "Big_Name"], "--name"),
        (vec!["--url", "http://v/v1", "--cpu", "two"], "--cpu"),
        (
            vec!["--url", "http://v/v1", "--start-at", "tomorrow"],
            "--start-at",
        ),
        (
            vec!["--url", "http://v/v1", "--file", "elsewhere.json"],
            "--file",
        ),
        (
            vec!["--url", "http://v/v1", "--", "--results", "x"],
            "--results",
        ),
        (vec!["--url", "http://v/v1", "--image", "a b"], "--image"),
    ];
    for (extra, flag) in cases {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let (code, out, err) = k8s(dir.path(), &args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(out.is_empty(), "no half manifest on stdout: {out}");
        assert!(err.contains(flag), "{flag} in {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    let (code, _, err) = k8s(
        dir.path(),
        &[
            "--shards",
            "2",
            "--script",
            "nope.rhai",
            "--url",
            "http://v/v1",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--script nope.rhai"), "{err}");
    std::fs::write(dir.path().join("bench/big.txt"), "x".repeat(1100 * 1024)).unwrap();
    let (code, _, err) = k8s(
        dir.path(),
        &[
            "--shards",
            "2",
            "--script",
            "bench/chat.rhai",
            "--file",
            "bench/big.txt",
            "--url",
            "http://v/v1",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("1 MiB"), "{err}");
}
/// The manifests' own shell commands, run as the pods would (shard I with
/// `JOB_COMPLETION_INDEX=I`, the ConfigMap's files in the working folder, the volume a temp
/// folder), against one mock in its own process that wants the key from the Secret: every
/// request the mock saw is in the merged run, once, and the key is in no file.
#[test]
fn the_rendered_pods_run_and_merge_on_one_machine() {
    const KEY: &str = "sk-k8s-simulated-0123456789";
    let mock = common::MockProcess::start(&[
        "--ttft-ms",
        "20",
        "--itl-ms",
        "2",
        "--output-tokens",
        "8",
        "--require-key",
        KEY,
    ]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/steady.rhai"),
        "request(#{ endpoint: \"chat\", max_tokens: 8, prompt: |i| `Request ${i}` });\n\
         phase(\"steady\", #{ duration: 2, rps: 40, concurrency: 16 });\n",
    )
    .unwrap();
    let start_ms = chrono::Utc::now().timestamp_millis() + 4000;
    let (code, yaml, err) = k8s(
        dir.path(),
        &[
            "--shards",
            "4",
            "--script",
            "src/steady.rhai",
            "--url",
            &mock.base_url,
            "--api-key-secret",
            "key",
            "--name",
            "sim",
            "--start-at",
            &start_ms.to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let docs = documents(&yaml);
    // The ConfigMap, mounted: each item's key written at its path.
    let bench = dir.path().join("bench");
    let items = &docs[1]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"];
    for item in items.as_array().unwrap() {
        let path = bench.join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = docs[0]["data"][item["key"].as_str().unwrap()]
            .as_str()
            .unwrap();
        std::fs::write(path, text).unwrap();
    }
    let volume = dir.path().join("volume");
    let command = |doc: &Value| {
        doc["spec"]["template"]["spec"]["containers"][0]["args"][0]
            .as_str()
            .unwrap()
            .replace("/results/", &format!("{}/", volume.display()))
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_llmbench")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pod = |script: String, index: Option<usize>| {
        let mut c = Command::new("sh");
        c.args(["-c", &script])
            .current_dir(&bench)
            .env("PATH", &path);
        if let Some(i) = index {
            c.env("JOB_COMPLETION_INDEX", i.to_string())
                .env("LLMBENCH_API_KEY", KEY);
        }
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let shards: Vec<_> = (0..4).map(|i| pod(command(&docs[1]), Some(i))).collect();
    let merge = pod(command(&docs[2]), None);
    for child in shards {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = merge.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let merged = volume.join("sim/merged");
    let records = common::raw_records(&merged);
    let stats = mock.stats();
    assert_eq!(records.len() as u64, stats.received);
    assert_eq!(records.len(), 80);
    assert!(
        records
            .iter()
            .all(|r| r.outcome == llmbench::record::Outcome::Ok)
    );
    for shard in 0..4 {
        let sent = records.iter().filter(|r| r.shard == Some(shard)).count();
        assert_eq!(sent, 20, "shard {shard}");
    }
    let mut ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..80).collect::<Vec<u64>>());
    for file in common::all_files(&volume) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&KEY[..12]),
            "the key is in {}",
            file.display()
        );
    }
}
