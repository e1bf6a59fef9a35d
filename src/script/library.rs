//! The script library: resolves `import "lib/..."` from the script's folder, then `scripts/`
//! (so `lib/x` is `scripts/lib/x.rhai`), then each folder in `LLMBENCH_SCRIPT_PATH`
//! (colon-separated), then the copy of `scripts/lib` built into the binary (`shipped`). Imported files are
//! compiled with the same sandboxed engine; an error inside one names that file.
//!
//! An import resolves inside one of those folders: a link that leads out of its folder, or to a
//! file that is not a `.rhai` script, is refused before it is read, so an import error can never
//! show lines of another file (a key file, a YAML config). `locate_dataset` applies the same
//! rule to the data files `dataset(...)` and tokenizers read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::{AST, Engine, EvalAltResult, Module, Position, Scope, Shared};

use super::ScriptError;
use super::shipped::{BUILT_IN, LIBRARY, SCRIPT_PATH_VAR, built_in, search_path};

/// The text of a library file named in an error: from disk, or the built-in copy.
pub fn source_text(name: &str) -> Option<String> {
    if let Some(rel) = name.strip_prefix(BUILT_IN) {
        return built_in(rel).map(str::to_owned);
    }
    std::fs::read_to_string(name).ok()
}

pub struct Library {
    dirs: Vec<PathBuf>,
    cache: Mutex<HashMap<String, Shared<Module>>>,
    loaded: Loaded,
}

/// Every module imported while a script ran: its import path, the module, its functions (so
/// closures made inside it stay callable later) and its own `import ... as` aliases.
pub type Loaded = Arc<Mutex<Vec<Imported>>>;

pub struct Imported {
    pub path: String,
    pub module: Shared<Module>,
    pub functions: AST,
    pub aliases: Vec<(String, String)>,
}

/// The `import "path" as alias` statements in a script's text, as (path, alias).
pub fn import_aliases(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("import") {
        rest = &rest[at + "import".len()..];
        let Some(after) = rest.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some(end) = after.find('"') else { break };
        let path = &after[..end];
        let Some(tail) = after[end + 1..].trim_start().strip_prefix("as") else {
            continue;
        };
        let alias: String = tail
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !alias.is_empty() {
            out.push((path.to_owned(), alias));
        }
    }
    out
}

impl Library {
    pub fn new(script_dir: &Path, loaded: Loaded) -> Self {
        let mut dirs = vec![script_dir.to_owned()];
        dirs.extend(search_path());
        Self {
            dirs,
            cache: Mutex::default(),
            loaded,
        }
    }

    /// The file `path` resolves to, or the name of a built-in copy, with its text; an error
    /// when the file found leads outside its folder or is not a script.
    fn find(&self, path: &str) -> Result<Option<(String, Option<PathBuf>, String)>, String> {
        let rel = if path.ends_with(".rhai") {
            path.to_owned()
        } else {
            format!("{path}.rhai")
        };
        for dir in &self.dirs {
            let file = dir.join(&rel);
            if !file.is_file() {
                continue;
            }
            let real = contained(dir, &file).map_err(|e| format!("import {path:?}: {e}"))?;
            if real.extension().is_none_or(|e| e != "rhai") {
                return Err(format!(
                    "import {path:?}: {} is a link to a file that is not a .rhai script; imports read only scripts",
                    file.display()
                ));
            }
            if let Ok(text) = std::fs::read_to_string(&real) {
                return Ok(Some((file.display().to_string(), Some(file), text)));
            }
        }
        Ok(LIBRARY
            .iter()
            .find(|(name, _)| *name == rel)
            .map(|(name, text)| (format!("{BUILT_IN}{name}"), None, (*text).to_owned())))
    }

    fn searched(&self) -> String {
        let mut s: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        s.push("the built-in library".into());
        s.join(", ")
    }
}

impl rhai::ModuleResolver for Library {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        if let Some(m) = self.cache.lock().expect("library cache").get(path) {
            return Ok(m.clone());
        }
        let relative = Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !relative {
            return Err(EvalAltResult::ErrorRuntime(
                format!("import {path:?}: give a relative path without \"..\", e.g. \"lib/prompts\"; add folders with {SCRIPT_PATH_VAR}").into(),
                pos,
            )
            .into());
        }
        let found = self
            .find(path)
            .map_err(|e| Box::new(EvalAltResult::ErrorRuntime(e.into(), pos)))?;
        let Some((name, file, text)) = found else {
            return Err(EvalAltResult::ErrorRuntime(
                format!(
                    "import {path:?}: no such script; looked in {} (set {SCRIPT_PATH_VAR} to add folders)",
                    self.searched()
                )
                .into(),
                pos,
            )
            .into());
        };
        let shown = file.clone().unwrap_or_else(|| PathBuf::from(&name));
        let fail = |e: ScriptError| -> Box<EvalAltResult> {
            EvalAltResult::ErrorRuntime(format!("in import {path:?}: {e}").into(), pos).into()
        };
        let mut ast = engine
            .compile(&text)
            .map_err(|e| fail(ScriptError::at(&shown, Some(&text), e.1, e.0.to_string())))?;
        ast.set_source(name.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| fail(ScriptError::from_rhai(&shown, Some(&text), &e)))?;
        let module = Shared::new(module);
        self.loaded.lock().expect("library list").push(Imported {
            path: path.to_owned(),
            module: module.clone(),
            functions: ast.clone_functions_only(),
            aliases: import_aliases(&text),
        });
        self.cache
            .lock()
            .expect("library cache")
            .insert(path.to_owned(), module.clone());
        Ok(module)
    }
}

/// The real path of `file`, found in folder `dir`, when it lies inside `dir` (following every
/// link); an error saying so when a link leads out.
pub(super) fn contained(dir: &Path, file: &Path) -> Result<PathBuf, String> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let root = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let real = file
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", file.display()))?;
    if real.starts_with(&root) {
        Ok(real)
    } else {
        Err(format!(
            "{} leads outside {} (through a link); files a script reads must lie inside its folder or the library folders",
            file.display(),
            dir.display()
        ))
    }
}

/// Environment variable with extra folders `dataset(...)` may read from.
pub const DATA_PATH_VAR: &str = "LLMBENCH_DATA_PATH";

/// Where `dataset(path)` reads: a relative path without `..`, in the script's folder or else in
/// a folder of `LLMBENCH_DATA_PATH`, and (following links) still inside that folder. A script
/// cannot name arbitrary files (keys, configs).
pub(super) fn locate_dataset(base: &Path, path: &str) -> Result<PathBuf, String> {
    use std::path::Component;
    let rel = Path::new(path);
    if !rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "{path:?}: give a path relative to the script's folder, without \"..\"; for files elsewhere add their folder to {DATA_PATH_VAR}"
        ));
    }
    let mut dirs = vec![base.to_owned()];
    if let Some(extra) = std::env::var_os(DATA_PATH_VAR) {
        dirs.extend(std::env::split_paths(&extra));
    }
    for dir in &dirs {
        let file = dir.join(rel);
        if file.is_file() {
            contained(dir, &file).map_err(|e| format!("{path:?}: {e}"))?;
            return Ok(file);
        }
    }
    Ok(base.join(rel))
}

#[cfg(test)]
mod tests {
    #[test]
    fn import_aliases_are_found() {
        let src = "import \"lib/a\" as a;\n// import nothing\nlet x = 1; import  \"lib/b.rhai\"  as  b_2 ;";
        assert_eq!(
            super::import_aliases(src),
            vec![
                ("lib/a".into(), "a".into()),
                ("lib/b.rhai".into(), "b_2".into())
            ]
        );
    }
}
