//! The original tool's YAML configs: `configs/targets.yaml` (name, base_url, api_key) and
//! `configs/models.yaml` (name, full_name), parsed and validated. `${VAR}` in an api_key reads
//! the environment, so keys need not be written into files. Errors name the file and line.
//! The shipped copies of the three files are built into the binary: a file missing from the
//! config folder is read from its built-in copy, so llmbench works from any folder; a file on
//! disk always wins (whole: the two are never merged).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plan::{ApiKey, Target};
use crate::redact::{self, Redactor};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    targets: Vec<TargetEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    name: String,
    base_url: String,
    #[serde(default)]
    api_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsFile {
    models: Vec<ModelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    name: String,
    full_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadsFile {
    workloads: Vec<Workload>,
}

/// One entry of `workloads.yaml`: an open-loop load at `rps` with at most `concurrency` in
/// flight, for `duration` seconds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    pub duration: f64,
    pub rps: f64,
    pub concurrency: u32,
}

/// The config folder (default `configs/`), read on demand.
#[derive(Debug, Clone)]
pub struct Configs {
    dir: PathBuf,
}

impl Configs {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `file` is read from, for messages: the folder's copy, else the built-in one.
    pub fn path_of(&self, file: &str) -> PathBuf {
        let path = self.dir.join(file);
        match embedded(file) {
            Some(_) if !path.exists() => PathBuf::from(format!("(built-in) configs/{file}")),
            _ => path,
        }
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, file: &str) -> Result<T, ConfigError> {
        let path = self.dir.join(file);
        let text = match embedded(file) {
            Some(text) if !path.exists() => return parse(self.path_of(file), text),
            _ => std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?,
        };
        parse(path, &text)
    }

    /// The target called `name` in `targets.yaml`.
    pub fn target(&self, name: &str) -> Result<Target, ConfigError> {
        let file: TargetsFile = self.read("targets.yaml")?;
        let path = self.path_of("targets.yaml");
        let names: Vec<&str> = file.targets.iter().map(|t| t.name.as_str()).collect();
        let entry = file
            .targets
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ConfigError::Invalid {
                path: path.clone(),
                message: format!(
                    "no target named {name:?}; the file defines: {}",
                    names.join(", ")
                ),
            })?;
        let api_key = match &entry.api_key {
            None => None,
            Some(raw) => Some(ApiKey::new(expand_env(raw).map_err(|var| {
                ConfigError::Invalid {
                    path: path.clone(),
                    message: format!(
                        "target {name:?}: api_key refers to ${{{var}}}, which is not set; export {var} or change the file"
                    ),
                }
            })?)),
        };
        Ok(Target {
            name: entry.name.clone(),
            base_url: entry.base_url.clone(),
            api_key,
        })
    }

    /// The full model name for `name` from `models.yaml`; `name` itself when the file does not
    /// list it (a script may name a model directly).
    pub fn model(&self, name: &str) -> Result<String, ConfigError> {
        let file: ModelsFile = self.read("models.yaml")?;
        Ok(file
            .models
            .into_iter()
            .find(|m| m.name == name)
            .map_or_else(|| name.to_owned(), |m| m.full_name))
    }
}

impl Configs {
    /// The workload called `name` in `workloads.yaml`.
    pub fn workload(&self, name: &str) -> Result<Workload, ConfigError> {
        let all = self.workloads()?;
        let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
        all.iter()
            .find(|w| w.name == name)
            .cloned()
            .ok_or_else(|| ConfigError::Invalid {
                path: self.path_of("workloads.yaml"),
                message: format!(
                    "no workload named {name:?}; the file defines: {}",
                    names.join(", ")
                ),
            })
    }

    /// Every workload in `workloads.yaml`, checked (positive duration, rps and concurrency).
    pub fn workloads(&self) -> Result<Vec<Workload>, ConfigError> {
        let file: WorkloadsFile = self.read("workloads.yaml")?;
        if file.workloads.is_empty() {
            return Err(ConfigError::Invalid {
                path: self.path_of("workloads.yaml"),
                message: "lists no workload; add one (name, duration, rps, concurrency)".into(),
            });
        }
        for w in &file.workloads {
            if !(w.duration > 0.0 && w.rps > 0.0 && w.concurrency > 0) {
                return Err(ConfigError::Invalid {
                    path: self.path_of("workloads.yaml"),
                    message: format!(
                        "workload {:?}: duration, rps and concurrency must all be greater than 0",
                        w.name
                    ),
                });
            }
        }
        Ok(file.workloads)
    }

    /// The environment variables `targets.yaml` reads (each `${VAR}` in an `api_key`); empty
    /// when the file does not parse. A script may name these as `api_key_env`.
    pub fn key_vars(&self) -> Vec<String> {
        let Ok(file) = self.read::<TargetsFile>("targets.yaml") else {
            return Vec::new();
        };
        let mut vars = Vec::new();
        for raw in file.targets.iter().filter_map(|t| t.api_key.as_deref()) {
            let mut rest = raw;
            while let Some(start) = rest.find("${") {
                let Some(len) = rest[start + 2..].find('}') else {
                    break;
                };
                vars.push(rest[start + 2..start + 2 + len].to_owned());
                rest = &rest[start + 3 + len..];
            }
        }
        vars
    }

    /// Target names in `targets.yaml`, in file order.
    pub fn target_names(&self) -> Result<Vec<String>, ConfigError> {
        let file: TargetsFile = self.read("targets.yaml")?;
        Ok(file.targets.into_iter().map(|t| t.name).collect())
    }

    /// Model full names (what a server knows them by) in `models.yaml`, in file order.
    pub fn model_full_names(&self) -> Result<Vec<String>, ConfigError> {
        let file: ModelsFile = self.read("models.yaml")?;
        Ok(file.models.into_iter().map(|m| m.full_name).collect())
    }

    /// Model short names in `models.yaml`, in file order.
    pub fn model_names(&self) -> Result<Vec<String>, ConfigError> {
        let file: ModelsFile = self.read("models.yaml")?;
        Ok(file.models.into_iter().map(|m| m.name).collect())
    }
}

/// The shipped `configs/` files, for when the config folder lacks one.
pub const EMBEDDED: [(&str, &str); 3] = [
    ("targets.yaml", include_str!("../configs/targets.yaml")),
    ("models.yaml", include_str!("../configs/models.yaml")),
    ("workloads.yaml", include_str!("../configs/workloads.yaml")),
];

/// The built-in copy of the config file `file`.
pub fn embedded(file: &str) -> Option<&'static str> {
    EMBEDDED.iter().find(|(n, _)| *n == file).map(|(_, t)| *t)
}

/// Parses a config file's text; `path` names it in errors.
fn parse<T: for<'de> Deserialize<'de>>(path: PathBuf, text: &str) -> Result<T, ConfigError> {
    // The message and its line and column, never the file's lines: a line near the error may
    // hold a key, so no snippet is shown and every value that may be a secret is redacted.
    serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
        path,
        message: file_secrets(text).redact(&e.without_snippet().to_string()),
    })
}

/// The values in a YAML file that may be secrets: each value of a credential-like key
/// (`api_key:`, `token:`, see `redact::is_credential_param`) and the credentials of each URL.
fn file_secrets(text: &str) -> Redactor {
    let mut r = Redactor::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key
            .trim()
            .trim_start_matches('-')
            .trim()
            .trim_matches(['"', '\'']);
        let value = value.trim().trim_matches(['"', '\'']);
        if redact::is_credential_param(key) {
            r.add(value);
            for piece in value.split(|c: char| c.is_whitespace() || "{}[],\"'#".contains(c)) {
                r.add(piece);
            }
        }
        if value.contains("://") {
            r.add_url(value);
        }
    }
    r
}

/// Replaces each `${VAR}` with the variable's value; `Err(VAR)` names the first unset one.
pub fn expand_env(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        let var = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        out.push_str(&std::env::var(var).map_err(|_| var.to_owned())?);
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        d
    }

    #[test]
    fn reads_the_original_tools_files() {
        let d = dir_with(&[
            (
                "targets.yaml",
                "targets:\n  - name: vllm-local\n    base_url: http://localhost:8000/v1\n    api_key: \"EMPTY\"\n",
            ),
            (
                "models.yaml",
                "models:\n  - name: llama-3.1-8b-instruct\n    full_name: meta-llama/Meta-Llama-3.1-8B-Instruct\n",
            ),
        ]);
        let c = Configs::new(d.path());
        let t = c.target("vllm-local").unwrap();
        assert_eq!(t.base_url, "http://localhost:8000/v1");
        assert_eq!(t.api_key.unwrap().expose(), "EMPTY");
        assert_eq!(
            c.model("llama-3.1-8b-instruct").unwrap(),
            "meta-llama/Meta-Llama-3.1-8B-Instruct"
        );
        assert_eq!(c.model("other").unwrap(), "other");
        let err = c.target("nope").unwrap_err().to_string();
        assert!(
            err.contains("vllm-local") && err.contains("targets.yaml"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_workloads_are_the_original_four() {
        let c = Configs::new(concat!(env!("CARGO_MANIFEST_DIR"), "/configs"));
        let w: Vec<(String, f64, f64, u32)> = c
            .workloads()
            .unwrap()
            .into_iter()
            .map(|w| (w.name, w.duration, w.rps, w.concurrency))
            .collect();
        assert_eq!(
            w,
            vec![
                ("low-load".into(), 300.0, 1.0, 1),
                ("medium-load".into(), 300.0, 5.0, 10),
                ("high-load".into(), 300.0, 20.0, 50),
                ("stress-test".into(), 300.0, 50.0, 100),
            ]
        );
        let d = dir_with(&[(
            "workloads.yaml",
            "workloads:\n  - name: a\n    duration: 1\n    rps: 1\n    concurency: 1\n",
        )]);
        let err = Configs::new(d.path())
            .workload("a")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("workloads.yaml") && err.contains("concurency"),
            "{err}"
        );
        assert!(err.contains("line") || err.contains(":5"), "{err}");
        let err = c.workload("huge").unwrap_err().to_string();
        assert!(err.contains("medium-load"), "{err}");
    }

    #[test]
    fn a_missing_file_is_read_from_its_built_in_copy_and_a_file_on_disk_wins() {
        let empty = tempfile::tempdir().unwrap();
        let c = Configs::new(empty.path());
        assert_eq!(c.workloads().unwrap().len(), 4);
        assert_eq!(c.target_names().unwrap(), vec!["vllm-local"]);
        assert_eq!(c.model_names().unwrap(), vec!["llama-3.1-8b-instruct"]);
        let err = c.workload("nope").unwrap_err().to_string();
        assert!(err.contains("(built-in) configs/workloads.yaml"), "{err}");
        let d = dir_with(&[(
            "workloads.yaml",
            "workloads:\n  - name: mine\n    duration: 1\n    rps: 7\n    concurrency: 1\n",
        )]);
        let names: Vec<String> = Configs::new(d.path())
            .workloads()
            .unwrap()
            .into_iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(
            names,
            vec!["mine"],
            "the file replaces the built-in list whole"
        );
    }

    #[test]
    fn api_keys_expand_env_vars() {
        // SAFETY: this test alone uses this variable name.
        unsafe { std::env::set_var("LLMBENCH_TEST_KEY_CFG", "sk-123") };
        assert_eq!(
            expand_env("pre-${LLMBENCH_TEST_KEY_CFG}").unwrap(),
            "pre-sk-123"
        );
        assert_eq!(
            expand_env("${LLMBENCH_SURELY_UNSET_VAR}").unwrap_err(),
            "LLMBENCH_SURELY_UNSET_VAR"
        );
    }

    #[test]
    fn the_variables_targets_yaml_reads_are_listed() {
        let d = dir_with(&[(
            "targets.yaml",
            "targets:\n  - name: a\n    base_url: http://x\n    api_key: \"${KEY_A}\"\n  - name: b\n    base_url: http://y\n    api_key: \"pre-${KEY_B}-${KEY_C}\"\n  - name: c\n    base_url: http://z\n",
        )]);
        assert_eq!(
            Configs::new(d.path()).key_vars(),
            vec!["KEY_A", "KEY_B", "KEY_C"]
        );
        assert!(
            Configs::new(d.path().join("none")).key_vars().is_empty(),
            "the built-in targets.yaml reads no variable"
        );
    }

    #[test]
    fn a_yaml_error_shows_no_line_of_the_file_nor_a_key() {
        let key = "sk-yaml-planted-0123456789abcdef";
        for text in [
            format!("targets:\n  - name: a\n    api_key: \"{key}\"\n    base_url: [\n"),
            format!("targets:\n  - name: a\n    api_key: {key}\n  base_url: x\n"),
            format!("targets:\n  - name: a\n    base_url: http://u:{key}@h/v1\n    bogus: 1\n"),
            format!(
                "targets:\n  - name: a\n    base_url: http://h/v1?token={key}\n    api_key: [1]\n"
            ),
            format!("targets:\n  - name: a\n    api_key: {{ {key}\n"),
        ] {
            let d = dir_with(&[("targets.yaml", text.as_str())]);
            let err = Configs::new(d.path()).target("a").unwrap_err().to_string();
            assert!(
                err.contains("targets.yaml") && err.contains("line"),
                "{err}"
            );
            assert!(!err.contains(&key[..8]), "{err}");
            assert!(!err.contains("base_url: "), "a line of the file: {err}");
        }
    }

    #[test]
    fn yaml_errors_name_file_and_line() {
        let d = dir_with(&[("targets.yaml", "targets:\n  - name: a\n    base_url: [\n")]);
        let err = Configs::new(d.path()).target("a").unwrap_err().to_string();
        assert!(err.contains("targets.yaml"), "{err}");
        assert!(err.contains("line") || err.contains(":3"), "{err}");
    }
}
