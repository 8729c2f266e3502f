//! A submission's enhancement options from its flags: the preset, then the flags given over it, checked against
//! their ranges and against the model (the post-filter is DeepFilterNet's own).

use crate::args::EnhanceArgs;
use anyhow::bail;
use scenequeue_core::config::valid_model_name;
use scenequeue_core::options::{AsrOptions, BatchOptions};
use scenequeue_worker::asr;
use scenequeue_worker::{AdapterKind, manifest};
use std::path::Path;

pub fn options(args: &EnhanceArgs, model_dir: &Path, model: &str) -> anyhow::Result<BatchOptions> {
    let given = BatchOptions {
        atten_lim_db: args.atten_lim_db,
        post_filter_beta: args.post_filter_beta,
        highpass_hz: args.highpass_hz,
        loudness_lufs: args.loudness_lufs,
    };
    let options = given.over(args.preset.map(|p| p.options()).unwrap_or_default());
    if let Err(e) = options.validate() {
        bail!("{e}");
    }
    // Checked here when the model is installed on this machine; a worker refuses the scenes otherwise.
    if options.post_filter_beta.is_some_and(|beta| beta > 0.0)
        && let Ok((manifest, _)) = manifest(model_dir, model)
        && manifest.adapter != AdapterKind::Deepfilternet3
    {
        bail!(
            "--post-filter-beta is a DeepFilterNet option; model {model:?} has none (adapter {:?})",
            manifest.adapter
        );
    }
    Ok(options)
}

/// The submission's transcription, if asked for; the recognition model is checked when it is installed on this
/// machine (a worker refuses the job otherwise).
pub fn asr(args: &EnhanceArgs, model_dir: &Path) -> anyhow::Result<Option<AsrOptions>> {
    if !args.transcribe {
        return Ok(None);
    }
    if !valid_model_name(&args.asr_model) {
        bail!("invalid recognition model name {:?}", args.asr_model);
    }
    let installed = asr::available(model_dir);
    if model_dir.join(asr::ASR_DIR).is_dir() && !installed.contains(&args.asr_model) {
        bail!(
            "recognition model {:?} is not installed under {} (installed: {}; scripts/fetch-models.sh fetches them)",
            args.asr_model,
            model_dir.join(asr::ASR_DIR).display(),
            installed.join(", ")
        );
    }
    Ok(Some(AsrOptions {
        model: args.asr_model.clone(),
        language: args.language.to_string(),
        input: args.enhance_for_asr,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scenequeue_core::options::{Preset, TRANSCRIPTION};

    fn models() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
    }

    #[test]
    fn flags_override_the_preset_and_the_post_filter_needs_deepfilternet() {
        let args = EnhanceArgs { preset: Some(Preset::Transcription), highpass_hz: Some(0.0), ..Default::default() };
        let layered = options(&args, &models(), "deepfilternet3").unwrap();
        assert_eq!(layered, BatchOptions { highpass_hz: Some(0.0), ..TRANSCRIPTION });
        let args = EnhanceArgs { atten_lim_db: Some(-3.0), ..Default::default() };
        assert!(options_err(&args, "deepfilternet3").contains("attenuation limit"));
        let args = EnhanceArgs { post_filter_beta: Some(0.02), ..Default::default() };
        assert!(options(&args, &models(), "deepfilternet3").is_ok());
        assert!(options_err(&args, "nsnet2-48k").contains("DeepFilterNet option"));
    }

    fn options_err(args: &EnhanceArgs, model: &str) -> String {
        options(args, &models(), model).unwrap_err().to_string()
    }
}
