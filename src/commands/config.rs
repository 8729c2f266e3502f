//! `scenequeue config`: every setting's effective value and where it came from, secrets masked.

use crate::config::{FileSettings, Source, key_of, mask, resolve};
use clap::Command;
use std::collections::BTreeMap;

/// The effective configuration as TOML (so it can serve as a configuration file, once secrets are filled in):
/// one line per setting, with its source as a comment. `cmd` is the command line without the file applied
/// (its defaults are the built-in ones); `flags` holds the settings given as flags, by environment variable.
pub fn render(cmd: &Command, file: &FileSettings, flags: &BTreeMap<String, String>) -> String {
    let mut defaults: BTreeMap<String, Option<String>> = BTreeMap::new();
    collect_defaults(cmd, &mut defaults);
    let source_file = file.path.as_ref().map_or("none".to_string(), |p| p.display().to_string());
    let mut out = format!(
        "# scenequeue: effective configuration (flags > environment > file > defaults), secrets masked\n\
         # configuration file: {source_file}\n"
    );
    for (env, default) in defaults {
        let from_env = std::env::var(&env).ok().filter(|v| !v.is_empty());
        let (value, source) = resolve(flags.get(&env).cloned(), from_env, file.values.get(&env).cloned(), default);
        let key = key_of(&env);
        match value {
            Some(v) => {
                let quoted = toml::Value::String(mask(&env, &v)).to_string();
                out.push_str(&format!("{key} = {quoted}  # {} ({env})\n", source.name()));
            }
            None => out.push_str(&format!("# {key}: {} ({env})\n", Source::Unset.name())),
        }
    }
    out
}

/// Each environment variable of `cmd` and its subcommands with the flag's built-in default (the first one
/// found when several flags share a variable).
fn collect_defaults(cmd: &Command, out: &mut BTreeMap<String, Option<String>>) {
    for arg in cmd.get_arguments() {
        let Some(env) = arg.get_env().and_then(|e| e.to_str()) else { continue };
        if env == crate::config::CONFIG_ENV {
            continue;
        }
        // A switch (`--cpu-fallback`) is off unless given.
        let default = match arg.get_default_values().first() {
            Some(v) => Some(v.to_string_lossy().into_owned()),
            None if !arg.get_action().takes_values() => Some("false".into()),
            None => None,
        };
        let entry = out.entry(env.to_string()).or_insert(None);
        if entry.is_none() {
            *entry = default;
        }
    }
    for sub in cmd.get_subcommands() {
        collect_defaults(sub, out);
    }
}
