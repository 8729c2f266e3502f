//! The configuration file (`--config FILE` or `SCENEQUEUE_CONFIG`): a TOML table whose keys are the settings'
//! environment variables without `SCENEQUEUE_`, in lower case (`database_url`, `threads`, `http_addr`...).
//!
//! Precedence is flags > environment > file > defaults. The file does not restate any default: its values
//! replace the flags' defaults (which come from the settings types' `Default`), so clap itself applies the
//! order. `scenequeue config` prints the effective values with every secret masked ([`mask`]).

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable that names the configuration file.
pub const CONFIG_ENV: &str = "SCENEQUEUE_CONFIG";
/// The prefix of every setting's environment variable.
const PREFIX: &str = "SCENEQUEUE_";

/// Settings read from a configuration file, keyed by their environment variable.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FileSettings {
    /// The file they came from.
    pub path: Option<PathBuf>,
    /// Environment variable -> value as text.
    pub values: BTreeMap<String, String>,
}

/// The configuration file named by `--config` in `args`, else by `SCENEQUEUE_CONFIG`; None without either.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(value));
        }
    }
    std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Every environment variable a flag of `cmd` or of its subcommands reads.
pub fn known_envs(cmd: &Command) -> Vec<String> {
    let mut out = Vec::new();
    collect_envs(cmd, &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect_envs(cmd: &Command, out: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
            out.push(env.to_string());
        }
    }
    for sub in cmd.get_subcommands() {
        collect_envs(sub, out);
    }
}

/// Reads `path` and checks every key against the settings `cmd` knows; the error names the file and the key.
pub fn load(path: &Path, cmd: &Command) -> Result<FileSettings, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the configuration file {}: {e}", path.display()))?;
    let mut settings = parse(&text, &known_envs(cmd)).map_err(|e| format!("{}: {e}", path.display()))?;
    settings.path = Some(path.to_path_buf());
    Ok(settings)
}

/// The settings of a configuration file's text; `known` lists the environment variables a key may stand for.
pub fn parse(text: &str, known: &[String]) -> Result<FileSettings, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_string())?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let env = format!("{PREFIX}{}", key.to_ascii_uppercase());
        if env == CONFIG_ENV || !known.contains(&env) || key != key.to_ascii_lowercase() {
            let keys: Vec<String> = known.iter().map(|e| key_of(e)).filter(|k| k != "config").collect();
            return Err(format!("unknown setting `{key}` (settings: {})", keys.join(", ")));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => return Err(format!("`{key}` must be a string, number or boolean, not {}", other.type_str())),
        };
        values.insert(env, text);
    }
    Ok(FileSettings { path: None, values })
}

/// The file key of an environment variable: `SCENEQUEUE_DATABASE_URL` -> `database_url`.
pub fn key_of(env: &str) -> String {
    env.strip_prefix(PREFIX).unwrap_or(env).to_ascii_lowercase()
}

/// `cmd` with every flag whose environment variable the file sets defaulting to the file's value, in every
/// subcommand, so flags and the environment still win over it.
pub fn apply(cmd: Command, file: &FileSettings) -> Command {
    if file.values.is_empty() {
        return cmd;
    }
    let ids: Vec<(String, String)> = cmd
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?;
            let value = file.values.get(env)?;
            Some((arg.get_id().to_string(), value.clone()))
        })
        .collect();
    let mut cmd = ids.into_iter().fold(cmd, |cmd, (id, value)| cmd.mut_arg(id, |arg| arg.default_value(value)));
    let subs: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in subs {
        cmd = cmd.mut_subcommand(name, |sub| apply(sub, file));
    }
    cmd
}

/// The top-level settings given as flags on the command line (the `config` subcommand's only flags), by
/// environment variable.
pub fn given_flags(cmd: &Command, matches: &ArgMatches) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for arg in cmd.get_arguments() {
        let Some(env) = arg.get_env().and_then(|e| e.to_str()) else { continue };
        let id = arg.get_id().as_str();
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        if let Ok(Some(mut raw)) = matches.try_get_raw(id)
            && let Some(value) = raw.next()
        {
            out.insert(env.to_string(), value.to_string_lossy().into_owned());
        }
    }
    out
}

/// Where a setting's effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// Its environment variable.
    Env,
    /// The configuration file.
    File,
    /// The built-in default.
    Default,
    /// Not set anywhere (an optional setting).
    Unset,
}

impl Source {
    /// How `scenequeue config` names it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "environment",
            Source::File => "file",
            Source::Default => "default",
            Source::Unset => "unset",
        }
    }
}

/// The effective value of one setting by the precedence flags > environment > file > defaults.
pub fn resolve(
    flag: Option<String>,
    env: Option<String>,
    file: Option<String>,
    default: Option<String>,
) -> (Option<String>, Source) {
    [(flag, Source::Flag), (env, Source::Env), (file, Source::File), (default, Source::Default)]
        .into_iter()
        .find_map(|(value, source)| value.map(|v| (Some(v), source)))
        .unwrap_or((None, Source::Unset))
}

/// Whether a setting holds a secret as its whole value (a token), rather than a URL with one inside.
fn is_secret(env: &str) -> bool {
    let key = key_of(env);
    (key.contains("token") || key.contains("password") || key.contains("secret")) && !key.ends_with("_file")
}

/// `value` of the setting `env` fit to print: a secret becomes `***`; a URL keeps everything but its password
/// (in the user part, `user:***@host`, or in a `password=` query parameter).
pub fn mask(env: &str, value: &str) -> String {
    if is_secret(env) {
        return "***".into();
    }
    if !value.contains("://") {
        return value.into();
    }
    let mut out = scenequeue_core::db::redact(value);
    if let Some(query_at) = out.find('?') {
        let (base, query) = out.split_at(query_at + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_password_param(k) => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{base}{}", masked.join("&"));
    }
    out
}

fn is_password_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "password" || key == "pass" || key.contains("sslpassword")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        ["SCENEQUEUE_DATABASE_URL", "SCENEQUEUE_THREADS", "SCENEQUEUE_CPU_FALLBACK", "SCENEQUEUE_CONFIG"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn keys_are_the_environment_variables_in_lower_case() {
        let file = parse("database_url = \"postgres://h/db\"\nthreads = 4\ncpu_fallback = true\n", &known()).unwrap();
        assert_eq!(file.values["SCENEQUEUE_DATABASE_URL"], "postgres://h/db");
        assert_eq!(file.values["SCENEQUEUE_THREADS"], "4");
        assert_eq!(file.values["SCENEQUEUE_CPU_FALLBACK"], "true");
    }

    #[test]
    fn unknown_keys_and_tables_are_refused_by_name() {
        let err = parse("thread = 4\n", &known()).unwrap_err();
        assert!(err.contains("unknown setting `thread`") && err.contains("threads"), "{err}");
        assert!(parse("config = \"x\"\n", &known()).is_err());
        assert!(parse("THREADS = 4\n", &known()).is_err());
        assert!(parse("[threads]\nx = 1\n", &known()).unwrap_err().contains("string, number or boolean"));
    }

    #[test]
    fn flags_win_over_environment_over_file_over_default() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(resolve(s("1"), s("2"), s("3"), s("4")), (s("1"), Source::Flag));
        assert_eq!(resolve(None, s("2"), s("3"), s("4")), (s("2"), Source::Env));
        assert_eq!(resolve(None, None, s("3"), s("4")), (s("3"), Source::File));
        assert_eq!(resolve(None, None, None, s("4")), (s("4"), Source::Default));
        assert_eq!(resolve(None, None, None, None), (None, Source::Unset));
    }

    #[test]
    fn passwords_and_tokens_are_masked() {
        let db = "SCENEQUEUE_DATABASE_URL";
        assert_eq!(
            mask(db, "postgres://sq:hunter2@db:5432/sq?sslmode=require"),
            "postgres://sq:***@db:5432/sq?sslmode=require"
        );
        assert_eq!(
            mask(db, "postgres://db/sq?user=sq&password=hunter2&sslmode=verify-full"),
            "postgres://db/sq?user=sq&password=***&sslmode=verify-full"
        );
        assert_eq!(mask("SCENEQUEUE_AMQP_URL", "amqps://u:p@mq:5671/%2f"), "amqps://u:***@mq:5671/%2f");
        assert_eq!(mask("SCENEQUEUE_API_TOKEN", "abc"), "***");
        assert_eq!(mask("SCENEQUEUE_API_TOKEN_FILE", "/run/secrets/token"), "/run/secrets/token");
        assert_eq!(mask("SCENEQUEUE_THREADS", "4"), "4");
    }

    #[test]
    fn the_path_comes_from_the_flag_first() {
        let args: Vec<OsString> = ["scenequeue", "--config", "a.toml", "worker"].map(OsString::from).to_vec();
        assert_eq!(config_path(&args), Some(PathBuf::from("a.toml")));
        let args: Vec<OsString> = ["scenequeue", "worker", "--config=b.toml"].map(OsString::from).to_vec();
        assert_eq!(config_path(&args), Some(PathBuf::from("b.toml")));
    }
}
