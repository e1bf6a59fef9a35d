//! `llmbench k8s`: the Kubernetes manifests of one sharded run, printed as YAML. The template
//! is `deploy/k8s/job.yaml.j2` (carried in the binary); this module checks every input, quotes
//! every value and fills it in. It reads the script and the files it names, and nothing else:
//! no cluster is asked anything, and the API key is only ever named (a Secret), never read.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::cli::K8sArgs;
use super::{EXIT_OK, usage_error};

/// The template, as shipped.
pub const TEMPLATE: &str = include_str!("../../deploy/k8s/job.yaml.j2");

/// A ConfigMap holds at most 1 MiB (etcd's limit on one object).
const CONFIGMAP_MAX_BYTES: usize = 1024 * 1024;

/// The longest run name: the objects add `-workload`, and each shard pod's host name adds
/// `-shards-INDEX` and a random suffix within Kubernetes' 63-character label limit.
const NAME_MAX: usize = 40;

/// Flags the manifests set on every shard themselves, so they may not come after `--`.
const SET_BY_THE_MANIFEST: [&str; 7] = [
    "--shard",
    "--shards",
    "--start-at",
    "--url",
    "--api-key-env",
    "--results",
    "--no-progress",
];

/// The environment variable the shard pods read the API key from (filled from the Secret).
const KEY_VAR: &str = "LLMBENCH_API_KEY";

/// `llmbench k8s`: prints the manifests, or exits 2 naming the flag to fix.
pub fn k8s(args: &K8sArgs) -> u8 {
    match render(args, chrono::Utc::now()) {
        Ok(yaml) => {
            print!("{yaml}");
            EXIT_OK
        }
        Err(e) => usage_error(e),
    }
}

/// One file of the workload ConfigMap: its key, where it is mounted under /bench, its text.
#[derive(Debug, Serialize)]
struct WorkloadFile {
    key: String,
    path: String,
    text: String,
}

/// The manifests for `args`, with `now` the time a default start and name are taken from.
pub fn render(args: &K8sArgs, now: chrono::DateTime<chrono::Utc>) -> Result<String, String> {
    let start = args
        .start_at
        .unwrap_or_else(|| now + chrono::Duration::seconds(args.start_in as i64));
    let name = match &args.name {
        Some(n) => check_name("--name", n, NAME_MAX)?.to_owned(),
        None => format!("llmbench-{}", start.format("%Y%m%d-%H%M%S")),
    };
    check_url(&args.url)?;
    check_extra(&args.extra)?;
    check_image(&args.image)?;
    check_name("--pvc", &args.pvc, 253)?;
    if let Some(secret) = &args.api_key_secret {
        check_name("--api-key-secret", secret, 253)?;
    }
    check_key("--api-key-secret-key", &args.api_key_secret_key)?;
    for (flag, value) in [
        ("--cpu", &args.cpu),
        ("--memory", &args.memory),
        ("--memory-limit", &args.memory_limit),
    ] {
        check_quantity(flag, value)?;
    }
    let files = workload_files(&args.script, &args.files)?;
    let script_path = files[0].path.clone();
    let start_at = start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (shard_command, merge_command) = commands(args, &name, &script_path, &start_at);

    let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let quoted: BTreeMap<&str, String> = [
        ("run", q(&name)),
        ("configmap", q(&format!("{name}-workload"))),
        ("shards_job", q(&format!("{name}-shards"))),
        ("merge_job", q(&format!("{name}-merge"))),
        ("image", q(&args.image)),
        ("pvc", q(&args.pvc)),
        ("cpu", q(&args.cpu)),
        ("memory", q(&args.memory)),
        ("memory_limit", q(&args.memory_limit)),
        ("shard_command", q(&shard_command)),
        ("merge_command", q(&merge_command)),
        ("script", q(&script_path)),
        (
            "api_key_secret",
            args.api_key_secret.as_deref().map(q).unwrap_or_default(),
        ),
        ("api_key_secret_key", q(&args.api_key_secret_key)),
    ]
    .into_iter()
    .collect();
    let files: Vec<WorkloadFile> = files
        .into_iter()
        .map(|f| WorkloadFile {
            key: q(&f.key),
            path: q(&f.path),
            text: q(&f.text),
        })
        .collect();

    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template("job.yaml.j2", TEMPLATE)
        .map_err(|e| format!("deploy/k8s/job.yaml.j2: {e}"))?;
    let ctx = minijinja::context! {
        q => quoted,
        files => minijinja::Value::from(minijinja::value::Serde(&files)),
        shards => args.shards,
        deadline_s => args.deadline,
        start_at => start_at,
        version => env!("CARGO_PKG_VERSION"),
    };
    let yaml = env
        .get_template("job.yaml.j2")
        .and_then(|t| t.render(ctx))
        .map_err(|e| format!("deploy/k8s/job.yaml.j2: {e}"))?;
    Ok(yaml.trim().to_owned() + "\n")
}

/// The shard pods' and the merge pod's shell commands.
fn commands(args: &K8sArgs, name: &str, script_path: &str, start_at: &str) -> (String, String) {
    let dir = format!("/results/{name}");

    let mut shard = vec![
        "llmbench".to_owned(),
        sh_quote(script_path),
        "--shard".into(),
        format!("\"$JOB_COMPLETION_INDEX\"/{}", args.shards),
        "--start-at".into(),
        sh_quote(start_at),
        "--url".into(),
        sh_quote(&args.url),
        "--results".into(),
        "\"$out\"".into(),
        "--no-progress".into(),
        "--no-compare-report".into(),
    ];
    if args.api_key_secret.is_some() {
        shard.extend(["--api-key-env".into(), KEY_VAR.into()]);
    }
    shard.extend(args.extra.iter().map(|a| sh_quote(a)));
    let shard_command = format!(
        "out={dir}/shard-\"$JOB_COMPLETION_INDEX\"\n\
         mkdir -p {dir}/exit\n\
         {}\n\
         rc=$?\n\
         echo \"$rc\" > {dir}/exit/\"$JOB_COMPLETION_INDEX\"\n\
         # 1 is a failed assertion on this shard's share of the load: the shard ran, and the\n\
         # merged run is what its assertions are judged on.\n\
         [ \"$rc\" -le 1 ]\n",
        shard.join(" ")
    );
    let merge_command = format!(
        "until [ \"$(ls {dir}/exit 2>/dev/null | wc -l)\" -ge {n} ]; do sleep 5; done\n\
         for f in {dir}/exit/*; do\n\
         \x20 rc=$(cat \"$f\")\n\
         \x20 if [ \"$rc\" -gt 1 ]; then echo \"llmbench: shard ${{f##*/}} failed (exit $rc); not merging\" >&2; exit 2; fi\n\
         done\n\
         exec llmbench merge {dir}/shard-* --results {dir}/merged\n",
        n = args.shards
    );

    (shard_command, merge_command)
}

/// A Kubernetes object name (RFC 1123: lower-case letters, digits, `-` and `.`, starting and
/// ending with a letter or digit), at most `max` characters.
fn check_name<'a>(flag: &str, name: &'a str, max: usize) -> Result<&'a str, String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() > max
        || !name.chars().all(ok_char)
        || !ends_ok(name.chars().next())
        || !ends_ok(name.chars().last())
    {
        return Err(format!(
            "{flag} {}: a Kubernetes name is 1 to {max} lower-case letters, digits, '-' or '.', \
             starting and ending with a letter or digit",
            crate::escape::terminal(name)
        ));
    }
    Ok(name)
}

/// A Secret's or ConfigMap's key: letters, digits, `-`, `_` and `.`.
fn check_key(flag: &str, key: &str) -> Result<(), String> {
    if key.is_empty()
        || key.len() > 253
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "{flag} {key:?}: a key is letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// A CPU or memory quantity as Kubernetes writes them: `2`, `500m`, `1.5`, `512Mi`, `2G`.
fn check_quantity(flag: &str, value: &str) -> Result<(), String> {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &value[digits.len()..];
    let number_ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    let suffixes = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    if !number_ok || !suffixes.contains(&suffix) {
        return Err(format!(
            "{flag} {value:?}: give a Kubernetes quantity such as 2, 500m, 1Gi or 512Mi"
        ));
    }
    Ok(())
}

/// The image reference: printable, no spaces.
fn check_image(image: &str) -> Result<(), String> {
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "--image {:?}: give an image reference such as registry.example.com/llmbench:0.1.0",
            crate::escape::terminal(image)
        ));
    }
    Ok(())
}

/// The server's URL as the pods reach it: http(s), and no credential in it (the manifests
/// are files people share; a key belongs in a Secret).
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let Some(rest) = rest else {
        let shown = crate::redact::Redactor::new().with_url(url).redact(url);
        return Err(format!(
            "--url {}: give the server's base URL as the pods reach it, e.g. \
             http://vllm.default.svc:8000/v1",
            crate::escape::terminal(&shown)
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let params = rest.split_once(['?', '#']).map_or("", |(_, p)| p);
    let credential_param = params
        .split(['&', '#', ';'])
        .filter_map(|p| p.split('=').next())
        .any(crate::redact::is_credential_param);
    if authority.contains('@') || credential_param {
        return Err(
            "--url: the URL carries a credential (a user name and password, or a key \
             parameter), and the manifests would too; put the key in a Secret and name it with \
             --api-key-secret"
                .into(),
        );
    }
    Ok(())
}

/// What comes after `--` goes to every shard; the flags the manifests set are refused.
fn check_extra(extra: &[String]) -> Result<(), String> {
    for arg in extra {
        let flag = arg.split('=').next().unwrap_or(arg);
        if SET_BY_THE_MANIFEST.contains(&flag) {
            return Err(format!(
                "{flag} after --: the manifests set it on every shard; use this command's own \
                 flags (--shards, --start-at, --url, --api-key-secret) instead"
            ));
        }
    }
    Ok(())
}

/// The script and the files it reads, each at its path relative to the script's folder (where
/// `dataset(...)` and `import` look), under 1 MiB in all.
fn workload_files(script: &Path, extra: &[PathBuf]) -> Result<Vec<WorkloadFile>, String> {
    let read = |flag: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|e| format!("{flag} {}: cannot read it ({e})", path.display()))
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| {
                    format!(
                        "{flag} {}: not UTF-8 text; a ConfigMap carries text, so build binary \
                         files into the image",
                        path.display()
                    )
                })
            })
    };
    let script_name = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    check_key("--script", &script_name)?;
    let base = script.parent().unwrap_or(Path::new(""));
    let mut files = vec![WorkloadFile {
        key: script_name.clone(),
        path: script_name,
        text: read("--script", script)?,
    }];
    for (i, file) in extra.iter().enumerate() {
        let relative = relative_to(base, file).ok_or_else(|| {
            format!(
                "--file {}: give a file inside the script's folder ({}), as the script names it",
                file.display(),
                if base.as_os_str().is_empty() {
                    ".".into()
                } else {
                    base.display().to_string()
                }
            )
        })?;
        files.push(WorkloadFile {
            key: format!("file-{}", i + 1),
            path: relative,
            text: read("--file", file)?,
        });
    }
    let bytes: usize = files.iter().map(|f| f.text.len()).sum();
    if bytes > CONFIGMAP_MAX_BYTES - 16 * 1024 {
        return Err(format!(
            "--script and --file: {bytes} bytes in all, more than a ConfigMap holds (1 MiB); \
             build large datasets into the image or put them on the results volume"
        ));
    }
    Ok(files)
}

/// `file`'s path below `base` with `/` separators, when it is below it and has no `..`.
fn relative_to(base: &Path, file: &Path) -> Option<String> {
    let rest = if base.as_os_str().is_empty() {
        file
    } else {
        file.strip_prefix(base).ok()?
    };
    let parts: Vec<String> = rest
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str().map(str::to_owned),
            Component::CurDir => Some(String::new()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `s` as one word for `sh`: single-quoted, with each `'` closed, escaped and reopened.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_names_and_paths() {
        for ok in ["2", "500m", "1.5", "512Mi", "2G", "1Gi"] {
            assert!(check_quantity("--cpu", ok).is_ok(), "{ok}");
        }
        for bad in ["", "Mi", "1.2.3", "2 Gi", "1Gb", "-1"] {
            assert!(check_quantity("--cpu", bad).is_err(), "{bad}");
        }
        assert!(check_name("--name", "bench-1", 40).is_ok());
        for bad in ["Bench", "-a", "a-", "a_b", "", &"a".repeat(41)] {
            assert!(check_name("--name", bad, 40).is_err(), "{bad}");
        }
        let base = Path::new("scripts");
        assert_eq!(
            relative_to(base, Path::new("scripts/data/a.jsonl")).as_deref(),
            Some("data/a.jsonl")
        );
        assert_eq!(relative_to(base, Path::new("other/a.jsonl")), None);
        assert_eq!(relative_to(base, Path::new("scripts/../x")), None);
        assert_eq!(
            relative_to(Path::new(""), Path::new("./a.json")).as_deref(),
            Some("a.json")
        );
    }

    #[test]
    fn a_quoted_word_is_one_word_for_the_shell() {
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {}", sh_quote("a 'b' $HOME `x`"))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a 'b' $HOME `x`");
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_being_repeated() {
        for url in [
            "http://user:hunter2@vllm:8000/v1",
            "http://vllm:8000/v1?api_key=hunter2",
        ] {
            let e = check_url(url).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("Secret"), "{e}");
        }
        assert!(check_url("vllm:8000").is_err());
        assert!(check_url("http://vllm.default.svc:8000/v1").is_ok());
    }
}
