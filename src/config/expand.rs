//! `${VAR}` expansion for configuration values.
//!
//! Supported forms:
//!
//! - `${NAME}`: the value of `NAME`; an error if it is not set.
//! - `${NAME:-default}`: the value of `NAME`, or `default` when `NAME` is unset *or empty*
//!   (shell semantics). The default may be empty and cannot contain `${`.
//! - `$${`: a literal `${`.
//! - A `$` not followed by `{` is kept as it is.
//!
//! Names match `[A-Za-z_][A-Za-z0-9_]*`. The built-in variable [`EXE_VAR`] (`MCPMUX_EXE`)
//! resolves to the running executable unless the lookup defines it, so a config can start the
//! demo server built into the mcpmux binary.
//!
//! Problems never quote the text being expanded (it may be a secret); they name the variable
//! or give the character position of the malformed reference.

use std::collections::{BTreeMap, HashMap};

/// The built-in variable that resolves to the path of the running executable.
pub const EXE_VAR: &str = "MCPMUX_EXE";

/// Where variable values come from.
pub trait EnvLookup {
    /// The value of `name`, or `None` when it is not set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The environment of the running process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvLookup for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

impl<S: std::hash::BuildHasher> EnvLookup for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl<F> EnvLookup for F
where
    F: Fn(&str) -> Option<String>,
{
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// One problem found while expanding a string. The messages never contain the text being
/// expanded, only variable names and positions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandProblem {
    /// `${NAME}` where `NAME` is not set and there is no default.
    #[error("variable {0} is not set and has no default")]
    Unset(String),
    /// `${` with no closing `}`.
    #[error("unterminated `${{` at character {position} (missing `}}`)")]
    Unterminated {
        /// 1-based character position of the `$`.
        position: usize,
    },
    /// `${}` or `${:-x}`.
    #[error("empty variable name in the reference at character {position}")]
    EmptyName {
        /// 1-based character position of the `$`.
        position: usize,
    },
    /// A name with characters outside `[A-Za-z0-9_]`, or starting with a digit.
    #[error(
        "invalid variable reference at character {position}: names must match \
         [A-Za-z_][A-Za-z0-9_]* and only `${{NAME}}` and `${{NAME:-default}}` are supported"
    )]
    InvalidName {
        /// 1-based character position of the `$`.
        position: usize,
    },
    /// `${NAME:-...${...}`: nested references are not supported.
    #[error(
        "the default value in the reference at character {position} contains `${{`; \
         nested references are not supported"
    )]
    NestedDefault {
        /// 1-based character position of the `$`.
        position: usize,
    },
    /// [`EXE_VAR`] was used but the executable path is unknown.
    #[error("variable {EXE_VAR}: cannot determine the path of the running executable: {0}")]
    NoExecutable(String),
}

/// Every problem found in one string, in the order they appear.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join(.problems))]
pub struct ExpandError {
    /// At least one problem.
    pub problems: Vec<ExpandProblem>,
}

fn join(problems: &[ExpandProblem]) -> String {
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    messages.join("; ")
}

/// Expands every `${VAR}` / `${VAR:-default}` in `input` (see the module docs), reporting
/// every problem at once.
pub fn expand(input: &str, env: &dyn EnvLookup) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(input.len());
    let mut problems = Vec::new();
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let at = &rest[dollar..];
        let position = input[..input.len() - at.len()].chars().count() + 1;
        if let Some(after) = at.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(body) = at.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                problems.push(ExpandProblem::Unterminated { position });
                rest = "";
                break;
            };
            match resolve(&body[..end], position, env) {
                Ok(value) => out.push_str(&value),
                Err(problem) if !problems.contains(&problem) => problems.push(problem),
                Err(_) => {}
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &at[1..];
        }
    }
    out.push_str(rest);
    if problems.is_empty() { Ok(out) } else { Err(ExpandError { problems }) }
}

/// Resolves the inside of one `${...}` reference.
fn resolve(body: &str, position: usize, env: &dyn EnvLookup) -> Result<String, ExpandProblem> {
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if name.is_empty() {
        return Err(ExpandProblem::EmptyName { position });
    }
    if !is_valid_name(name) {
        return Err(ExpandProblem::InvalidName { position });
    }
    if default.is_some_and(|d| d.contains("${")) {
        return Err(ExpandProblem::NestedDefault { position });
    }
    match (lookup(name, env)?, default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(ExpandProblem::Unset(name.to_owned())),
    }
}

/// Looks `name` up, falling back to the built-in [`EXE_VAR`].
fn lookup(name: &str, env: &dyn EnvLookup) -> Result<Option<String>, ExpandProblem> {
    if let Some(value) = env.get(name) {
        return Ok(Some(value));
    }
    if name != EXE_VAR {
        return Ok(None);
    }
    std::env::current_exe()
        .map(|path| Some(path.to_string_lossy().into_owned()))
        .map_err(|e| ExpandProblem::NoExecutable(e.to_string()))
}

/// Whether `name` matches `[A-Za-z_][A-Za-z0-9_]*`.
fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn ok(input: &str, pairs: &[(&str, &str)]) -> String {
        match expand(input, &env(pairs)) {
            Ok(s) => s,
            Err(e) => panic!("expanding {input:?} failed: {e}"),
        }
    }

    fn problems(input: &str, pairs: &[(&str, &str)]) -> Vec<ExpandProblem> {
        match expand(input, &env(pairs)) {
            Ok(s) => panic!("expanding {input:?} should fail, got {s:?}"),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(ok("", &[]), "");
        assert_eq!(ok("npx -y server", &[]), "npx -y server");
        assert_eq!(ok("héllo wörld", &[]), "héllo wörld");
    }

    #[test]
    fn set_variables_are_replaced() {
        let vars = [("A", "1"), ("B_2", "two"), ("_x", "u")];
        assert_eq!(ok("${A}", &vars), "1");
        assert_eq!(ok("pre-${A}-${B_2}-post", &vars), "pre-1-two-post");
        assert_eq!(ok("${_x}${A}${A}", &vars), "u11");
        assert_eq!(ok("Bearer ${B_2}", &vars), "Bearer two");
    }

    #[test]
    fn set_but_empty_without_default_is_empty() {
        assert_eq!(ok("[${E}]", &[("E", "")]), "[]");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(ok("${PORT:-8080}", &[]), "8080");
        assert_eq!(ok("${PORT:-8080}", &[("PORT", "")]), "8080");
        assert_eq!(ok("${PORT:-8080}", &[("PORT", "9")]), "9");
        assert_eq!(ok("x${PORT:-}y", &[]), "xy");
        assert_eq!(ok("${U:-http://h:1/p?q=$x}", &[]), "http://h:1/p?q=$x");
    }

    #[test]
    fn unset_variable_is_named() {
        let p = problems("Bearer ${TOKEN}", &[]);
        assert_eq!(p, vec![ExpandProblem::Unset("TOKEN".into())]);
        assert_eq!(p[0].to_string(), "variable TOKEN is not set and has no default");
    }

    #[test]
    fn every_unset_variable_is_reported_once() {
        let err = expand("${A}${B}${A}${C:-c}${D}", &env(&[("B", "b")]));
        let Err(err) = err else { panic!("should fail") };
        assert_eq!(err.problems, vec![ExpandProblem::Unset("A".into()), ExpandProblem::Unset("D".into())]);
        let text = err.to_string();
        assert!(text.contains("variable A is not set"), "{text}");
        assert!(text.contains("variable D is not set"), "{text}");
    }

    #[test]
    fn escapes_and_lone_dollars() {
        assert_eq!(ok("$${A}", &[("A", "1")]), "${A}");
        assert_eq!(ok("a$${b}c", &[]), "a${b}c");
        assert_eq!(ok("$$A $5 a$ $", &[]), "$$A $5 a$ $");
        assert_eq!(ok("$${A}${A}", &[("A", "1")]), "${A}1");
        assert_eq!(ok("$$$${A}", &[]), "$$${A}");
        assert_eq!(ok("cost: $}", &[]), "cost: $}");
    }

    #[test]
    fn malformed_references() {
        assert_eq!(problems("ab${A", &[("A", "1")]), vec![ExpandProblem::Unterminated { position: 3 }]);
        assert_eq!(problems("${}", &[]), vec![ExpandProblem::EmptyName { position: 1 }]);
        assert_eq!(problems("${:-x}", &[]), vec![ExpandProblem::EmptyName { position: 1 }]);
        for bad in ["${1A}", "${A-B}", "${A B}", "${A:x}", "${é}", "${A=1}"] {
            assert_eq!(problems(bad, &[("A", "1")]), vec![ExpandProblem::InvalidName { position: 1 }], "{bad}");
        }
        assert_eq!(problems("é${A:-${B}}", &[]), vec![ExpandProblem::NestedDefault { position: 2 }]);
    }

    #[test]
    fn malformed_messages_do_not_quote_the_text() {
        let secret = "hunter2";
        let inputs = [format!("{secret}${{{secret}"), format!("${{{secret}-x}}"), format!("${{A:-${{{secret}}}")];
        for input in inputs {
            let Err(e) = expand(&input, &env(&[])) else { panic!("{input} should fail") };
            assert!(!e.to_string().contains(secret), "{e}");
        }
    }

    #[test]
    fn problems_of_all_kinds_are_collected() {
        let p = problems("${A} ${} ${B} ${x-y} ${C", &[]);
        assert_eq!(
            p,
            vec![
                ExpandProblem::Unset("A".into()),
                ExpandProblem::EmptyName { position: 6 },
                ExpandProblem::Unset("B".into()),
                ExpandProblem::InvalidName { position: 15 },
                ExpandProblem::Unterminated { position: 22 },
            ]
        );
    }

    #[test]
    fn exe_variable_is_built_in() {
        let exe = std::env::current_exe().map(|p| p.to_string_lossy().into_owned());
        let Ok(exe) = exe else {
            return;
        };
        assert_eq!(ok("${MCPMUX_EXE}", &[]), exe);
        assert_eq!(ok("${MCPMUX_EXE:-nope}", &[]), exe);
    }

    #[test]
    fn exe_variable_can_be_overridden() {
        assert_eq!(ok("${MCPMUX_EXE}", &[("MCPMUX_EXE", "/opt/mcpmux")]), "/opt/mcpmux");
    }

    #[test]
    fn closures_and_hash_maps_are_lookups() {
        let closure = |name: &str| (name == "A").then(|| "from-closure".to_owned());
        assert_eq!(expand("${A}", &closure), Ok("from-closure".to_owned()));
        let mut map = HashMap::new();
        map.insert("A".to_owned(), "from-map".to_owned());
        assert_eq!(expand("${A}", &map), Ok("from-map".to_owned()));
    }

    #[test]
    fn process_env_reads_the_environment() {
        // PATH is set in every test environment worth running in; compare with std directly.
        assert_eq!(ProcessEnv.get("PATH"), std::env::var("PATH").ok());
        assert_eq!(ProcessEnv.get("MCPMUX_SURELY_NOT_SET_1f6c0b"), None::<String>);
    }
}
