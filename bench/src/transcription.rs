//! Enhancement judged by transcription. Speech whose words are known (espeak-ng voices reading `corpus::TEXTS`
//! and as many sentences `corpus::generated` makes up, which no recogniser can have memorised) is mixed with each kind of noise at each SNR, enhanced by each chain through the worker's own scene path (read,
//! resample, enhance, attenuation limit, post-processing, 16-bit WAV), and the clean, noisy and enhanced audio
//! is transcribed by each recogniser:
//! - Whisper models, through the worker's own Whisper stage (`worker::asr`), in this process;
//! - PocketSphinx (bench/support/transcribe.py; scripts/fetch-recogniser.sh installs it), with its bundled US
//!   English acoustic model and dictionary and a unigram language model over the words of all the texts, equally
//!   likely: a closed vocabulary that gives away no word order.
//!
//! For a Whisper recogniser, `auto` is what `--enhance-for-asr auto` does in the farm: per clip, the first chain's
//! output or the untouched input, whichever the recogniser is surer of.
//!
//! Printed per recogniser: word error rate per condition (noise, SNR) and chain; per chain, the WER over all
//! conditions, the share of the noise-induced WER it recovers ((noisy - chain) / (noisy - clean)), its SNR gain
//! against the clean speech and its speed; and the recogniser's own speed.

use crate::corpus::{self, Noise, RATE, TEXTS};
use anyhow::{Context, bail};
use scenequeue_audio::dsp::PostProcess;
use scenequeue_audio::encode::{self, OutputFormat};
use scenequeue_audio::level::snr_db;
use scenequeue_audio::{decode, resample};
use scenequeue_core::options::BatchOptions;
use scenequeue_core::states::OutputFlag;
use scenequeue_core::transcripts;
use scenequeue_core::wer::{self, Tally, recovered};
use scenequeue_worker::asr::{self, Language, Whisper};
use scenequeue_worker::testing::{self as inference, InferenceOptions, SceneTask, Tuning};
use scenequeue_worker::{Device, Runtime, RuntimeOptions, SessionPolicy};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const DEFAULT_CHAINS: &str = "deepfilternet3,deepfilternet3+atten=18,deepfilternet3+atten=12,deepfilternet3+atten=6,\
deepfilternet3+pf=0.02,deepfilternet3+hp=0,nsnet2-48k";
/// The recogniser's rate.
const ASR_RATE: u32 = 16_000;
/// espeak-ng voices reading the texts in turn: two accents, male and female variants.
const VOICES: [&str; 6] = ["en-us", "en-gb", "en-us+m3", "en-gb+f3", "en-us+m7", "en-gb+f2"];
/// Level of the clean speech, dBFS RMS.
const SPEECH_DBFS: f64 = -26.0;
/// Level of the dither in every recogniser input, dBFS RMS (46 dB under the clean speech).
const DITHER_DBFS: f32 = -72.0;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    files: crate::ModelFiles,
    /// Enhancement chains, comma-separated: a model, then any of `+atten=DB` (attenuation limit), `+pf=BETA`
    /// (post-filter), `+hp=HZ` (high-pass; 0: off), `+lufs=LUFS`, as `scenequeue submit` takes them; the rest is
    /// the worker's defaults (70 Hz high-pass, no limit, no post-filter).
    #[arg(long, default_value = DEFAULT_CHAINS)]
    chains: String,
    /// Kinds of noise: white, pink, babble, music, reverb.
    #[arg(long, default_value = "white,pink,babble,music,reverb")]
    noises: String,
    /// SNRs of the mixtures, dB.
    #[arg(long, default_value = "-5,0,5,10,20", allow_hyphen_values = true)]
    snrs: String,
    /// How many texts to read: the everyday sentences first (6), then generated ones.
    #[arg(long, default_value_t = 2 * TEXTS.len())]
    texts: usize,
    /// ONNX Runtime threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Recogniser processes run at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Work directory (replaced): the mixtures, the enhanced audio and the transcripts.
    #[arg(long, default_value = "bench-out/transcription")]
    out: PathBuf,
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Where scripts/fetch-recogniser.sh installed PocketSphinx.
    #[arg(long, default_value = ".scenequeue/pocketsphinx")]
    pocketsphinx: PathBuf,
    /// Recognisers, comma-separated: Whisper models (directories under the model directory's `asr/`), run by
    /// the worker's own Whisper stage, and `pocketsphinx`.
    #[arg(long, default_value = "whisper-tiny.en")]
    recogniser: String,
}

/// Who transcribes.
enum Recogniser {
    /// PocketSphinx with the texts' closed vocabulary (bench/support/transcribe.py).
    PocketSphinx,
    /// A Whisper model of the worker's stage.
    Whisper(String),
}

impl Recogniser {
    fn parse(name: &str) -> anyhow::Result<Self> {
        match name.trim() {
            "pocketsphinx" => Ok(Self::PocketSphinx),
            w if w.starts_with("whisper") => Ok(Self::Whisper(w.to_string())),
            other => bail!("unknown recogniser {other:?}: expected pocketsphinx or a Whisper model"),
        }
    }

    fn name(&self) -> &str {
        match self {
            Self::PocketSphinx => "pocketsphinx",
            Self::Whisper(name) => name,
        }
    }
}

/// What a recogniser heard in one file: the text, and Whisper's average log-probability.
#[derive(Debug, Clone, Default)]
struct Heard {
    text: String,
    confidence: Option<f32>,
}

/// A model and the options a submission would give it.
struct Chain {
    name: String,
    model: String,
    options: BatchOptions,
}

fn parse_chain(spec: &str) -> anyhow::Result<Chain> {
    let mut parts = spec.trim().split('+');
    let model = parts.next().filter(|m| !m.is_empty()).context("an empty chain")?.to_string();
    let mut options = BatchOptions::default();
    for part in parts {
        let (key, value) = part.split_once('=').with_context(|| format!("{spec}: {part:?} is not KEY=VALUE"))?;
        let value: f32 = value.parse().with_context(|| format!("{spec}: {value:?} is not a number"))?;
        match key {
            "atten" => options.atten_lim_db = Some(value),
            "pf" => options.post_filter_beta = Some(value),
            "hp" => options.highpass_hz = Some(value),
            "lufs" => options.loudness_lufs = Some(value),
            _ => bail!("{spec}: unknown option {key:?} (atten, pf, hp, lufs)"),
        }
    }
    options.validate().map_err(|e| anyhow::anyhow!("{spec}: {e}"))?;
    Ok(Chain { name: spec.trim().to_string(), model, options })
}

fn list<T: std::str::FromStr>(s: &str, what: &str) -> anyhow::Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    s.split(',').map(|v| v.trim().parse::<T>().map_err(|e| anyhow::anyhow!("{what} {v:?}: {e}"))).collect()
}

/// One noisy recording: which text, which noise, which SNR, and where its 48 kHz mixture is.
struct Clip {
    text: usize,
    noise: Noise,
    snr: f64,
    input: PathBuf,
}

/// The clips of one noise and/or one SNR (None: any).
struct Group {
    noise: Option<Noise>,
    snr: Option<f64>,
}

impl Group {
    fn keeps(&self, c: &Clip) -> bool {
        self.noise.is_none_or(|n| n == c.noise) && self.snr.is_none_or(|s| s == c.snr)
    }

    fn label(&self) -> String {
        let noise = self.noise.map_or("all".to_string(), |n| n.to_string());
        let snr = self.snr.map_or("all".to_string(), |s| s.to_string());
        format!("{noise} | {snr}")
    }
}

impl Clip {
    fn key(&self) -> String {
        format!("{}-{:+03.0}-{}", self.noise, self.snr, self.text)
    }
}

/// Writes `x` (48 kHz) as the recogniser's input, with the same faint dither added to every input, and returns
/// its path. The dither stands for the noise floor of any real recording chain: on digital silence (espeak-ng's
/// pauses, or what an enhancer leaves of removed noise) the recogniser's energy features go to minus infinity
/// and its normalisation is thrown off, which made clean speech transcribe worse than noisy speech.
fn for_recogniser(x: &[f32], path: PathBuf) -> anyhow::Result<PathBuf> {
    let mut y = resample::resample(x, RATE, ASR_RATE)?;
    let mut rng = crate::synth::Rng::new(7);
    let amplitude = 10f32.powf(DITHER_DBFS / 20.0) * 3f32.sqrt();
    y.iter_mut().for_each(|v| *v += amplitude * (rng.next_f64() as f32 * 2.0 - 1.0));
    encode::write(&path, &y, ASR_RATE, OutputFormat::Wav16)?;
    Ok(path)
}

fn read(path: &Path) -> anyhow::Result<Vec<f32>> {
    let info = decode::probe(path)?;
    let (x, rate) = decode::read_span_mono(path, 0.0, info.duration_s())?;
    if rate != RATE {
        bail!("{}: {rate} Hz, expected {RATE}", path.display());
    }
    Ok(x)
}

/// What a chain did, over all clips.
#[derive(Default)]
struct ChainRun {
    /// Per clip key: the recogniser's input.
    asr: BTreeMap<String, PathBuf>,
    /// Clips whose enhanced output failed its speech checks (speech collapsed, silent): `auto` does not hear it.
    failed_checks: std::collections::HashSet<String>,
    snr_gain_db: f64,
    audio_s: f64,
    wall_s: f64,
}

fn enhance(args: &Args, chain: &Chain, clips: &[Clip], clean: &[Vec<f32>], dir: &Path) -> anyhow::Result<ChainRun> {
    let defaults = PostProcess::default();
    let options = InferenceOptions {
        runtime: RuntimeOptions::new(args.files.ort_library.clone(), Device::Cpu, args.threads),
        model_dir: args.files.model_dir.clone(),
        recovery: Default::default(),
        faults: Default::default(),
        post: defaults,
        output_format: OutputFormat::default(),
        // The model's own output is what is measured, flagged or not.
        on_bad_output: scenequeue_worker::OnBadOutput::Flag,
        fixed_windows: None,
    };
    let tuning = Tuning::resolve(&defaults, &chain.options);
    let tasks: Vec<SceneTask> = clips
        .iter()
        .map(|c| {
            let info = decode::probe(&c.input)?;
            Ok(SceneTask {
                source: c.input.clone(),
                start_s: 0.0,
                end_s: info.duration_s(),
                output: dir.join(format!("{}.wav", c.key())),
                tuning,
                decoder: None,
                transcribe: None,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut runner = inference::runner(&options, SessionPolicy::PerJob, None)?;
    let started = Instant::now();
    let results = runner.scenes(&chain.model, &tasks);
    let wall_s = started.elapsed().as_secs_f64();
    runner.job_done();
    let mut run = ChainRun { wall_s, ..ChainRun::default() };
    for ((clip, task), result) in clips.iter().zip(&tasks).zip(results) {
        let out = result.map_err(|e| anyhow::anyhow!("{} on {}: {e}", chain.name, clip.input.display()))?;
        if out.flags.iter().any(|f| matches!(f, OutputFlag::SpeechCollapsed | OutputFlag::Silent)) {
            run.failed_checks.insert(clip.key());
        }
        let (y, x) = (read(&task.output)?, read(&clip.input)?);
        run.snr_gain_db += f64::from(snr_db(&clean[clip.text], &y) - snr_db(&clean[clip.text], &x));
        run.audio_s += x.len() as f64 / f64::from(RATE);
        run.asr.insert(clip.key(), for_recogniser(&y, dir.join(format!("{}.16k.wav", clip.key())))?);
    }
    run.snr_gain_db /= clips.len().max(1) as f64;
    Ok(run)
}

/// The unigram language model: every word of the texts equally likely, in any order.
fn language_model(path: &Path, texts: &[&str]) -> anyhow::Result<()> {
    let mut vocabulary: Vec<String> = texts.iter().flat_map(|t| wer::words(t)).collect();
    vocabulary.sort();
    vocabulary.dedup();
    let p = (1.0 / (vocabulary.len() + 1) as f64).log10();
    let mut arpa = format!("\\data\\\nngram 1={}\n\n\\1-grams:\n{p:.4} </s>\n-99 <s>\n", vocabulary.len() + 2);
    for w in &vocabulary {
        arpa.push_str(&format!("{p:.4} {w}\n"));
    }
    arpa.push_str("\n\\end\\\n");
    std::fs::write(path, arpa).with_context(|| format!("cannot write {}", path.display()))
}

/// Transcribes `files` with `args.jobs` recogniser processes; returns the text per path.
fn transcribe(args: &Args, files: &[PathBuf], lm: &Path, dir: &Path) -> anyhow::Result<HashMap<PathBuf, String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/transcribe.py");
    let shards = args.jobs.clamp(1, 16);
    let mut children = Vec::new();
    for shard in 0..shards {
        let listing = dir.join(format!("list-{shard}.txt"));
        let mine: Vec<String> =
            files.iter().skip(shard).step_by(shards).map(|p| p.to_string_lossy().into_owned()).collect();
        std::fs::write(&listing, mine.join("\n"))?;
        let child = Command::new(&args.python)
            .arg(&script)
            .arg(&listing)
            .arg(lm)
            .env("PYTHONPATH", &args.pocketsphinx)
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", args.python.display()))?;
        children.push(child);
    }
    let mut texts = HashMap::new();
    for child in children {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("the recogniser failed ({}); is PocketSphinx installed (scripts/fetch-recogniser.sh)?", out.status);
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).context("the recogniser printed a non-JSON line")?;
            let (Some(path), Some(text)) = (v["path"].as_str(), v["text"].as_str()) else {
                bail!("the recogniser printed {line:?}");
            };
            texts.insert(PathBuf::from(path), text.to_string());
        }
    }
    if let Some(missing) = files.iter().find(|f| !texts.contains_key(*f)) {
        bail!("no transcript for {}", missing.display());
    }
    Ok(texts)
}

/// Transcribes `files` (16 kHz) with the worker's Whisper stage in this process; prints its speed.
fn whisper(args: &Args, name: &str, files: &[PathBuf]) -> anyhow::Result<HashMap<PathBuf, Heard>> {
    let runtime = Runtime::init(&args.files.ort_library, Device::Cpu, args.threads)?;
    let mut model = Whisper::load(&runtime, &args.files.model_dir, name)?;
    let (mut audio_s, started) = (0.0, Instant::now());
    let mut heard = HashMap::new();
    for file in files {
        let x = decode::read_all_at(file, asr::SAMPLE_RATE)?;
        audio_s += x.len() as f64 / f64::from(asr::SAMPLE_RATE);
        let t = model.transcribe(&x, &Language::Code("en".into()))?;
        heard.insert(file.clone(), Heard { text: t.text, confidence: Some(t.avg_logprob) });
    }
    let wall = started.elapsed().as_secs_f64();
    eprintln!(
        "{name}: {audio_s:.0} s of audio in {wall:.1} s on {} thread(s): {:.1} x real time",
        args.threads,
        audio_s / wall.max(1e-9)
    );
    Ok(heard)
}

/// Per clip, the recogniser's input `auto` chooses, by the worker's rule (`transcripts::surer`): the enhanced
/// scene or the untouched one, whichever the recogniser is surer of; the untouched one when the enhanced output
/// failed its speech checks.
fn auto_choice(
    noisy: &BTreeMap<String, PathBuf>,
    enhanced: &ChainRun,
    heard: &HashMap<PathBuf, Heard>,
) -> BTreeMap<String, PathBuf> {
    let sure = |p: &PathBuf| heard.get(p).and_then(|h| h.confidence).unwrap_or(f32::NEG_INFINITY);
    noisy
        .iter()
        .filter_map(|(key, original)| {
            let cleaned = enhanced.asr.get(key)?;
            let take = !enhanced.failed_checks.contains(key) && transcripts::surer(sure(cleaned), sure(original));
            Some((key.clone(), if take { cleaned.clone() } else { original.clone() }))
        })
        .collect()
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let chains: Vec<Chain> = args.chains.split(',').map(parse_chain).collect::<Result<_, _>>()?;
    let noises: Vec<Noise> = list(&args.noises, "noise")?;
    let snrs: Vec<f64> = list(&args.snrs, "SNR")?;
    let wanted = args.texts.max(1);
    let mut owned: Vec<String> = TEXTS.iter().take(wanted).map(|t| t.to_string()).collect();
    owned.extend(corpus::generated(wanted.saturating_sub(owned.len()), 2026));
    let texts: &[&str] = &owned.iter().map(String::as_str).collect::<Vec<_>>();
    let _ = std::fs::remove_dir_all(&args.out);
    let (input_dir, asr_dir) = (args.out.join("input"), args.out.join("asr"));
    std::fs::create_dir_all(&input_dir)?;
    std::fs::create_dir_all(&asr_dir)?;

    let mut clean = Vec::new();
    let mut clean_asr = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let voice = VOICES[i % VOICES.len()];
        let mut x = corpus::speak(&input_dir, &format!("text-{i}"), voice, text)?;
        corpus::set_level(&mut x, SPEECH_DBFS);
        clean_asr.push(for_recogniser(&x, asr_dir.join(format!("clean-{i}.16k.wav")))?);
        clean.push(x);
    }
    let babble = corpus::babble_track(&input_dir)?;
    let mut clips = Vec::new();
    let mut noisy_asr = BTreeMap::new();
    for &noise in &noises {
        for &snr in &snrs {
            for (i, x) in clean.iter().enumerate() {
                // The same noise for a text at every SNR: only its level changes.
                let n = corpus::noise(noise, x, 1000 + 10 * i as u64 + noise as u64, &babble);
                let y = corpus::mix(x, &n, snr);
                let clip = Clip { text: i, noise, snr, input: PathBuf::new() };
                let input = input_dir.join(format!("{}.wav", clip.key()));
                encode::write(&input, &y, RATE, OutputFormat::WavFloat)?;
                noisy_asr
                    .insert(clip.key(), for_recogniser(&y, asr_dir.join(format!("noisy-{}.16k.wav", clip.key())))?);
                clips.push(Clip { input, ..clip });
            }
        }
    }
    let mut runs = Vec::new();
    for chain in &chains {
        let dir = args.out.join("enhanced").join(chain.name.replace(['+', '='], "_"));
        let run = enhance(args, chain, &clips, &clean, &dir)?;
        eprintln!("{}: {:.1} s of audio in {:.1} s", chain.name, run.audio_s, run.wall_s);
        runs.push(run);
    }

    let recognisers: Vec<Recogniser> = args.recogniser.split(',').map(Recogniser::parse).collect::<Result<_, _>>()?;
    let mut files: Vec<PathBuf> = clean_asr.clone();
    files.extend(noisy_asr.values().cloned());
    files.extend(runs.iter().flat_map(|r| r.asr.values().cloned()));
    let study = Study {
        texts,
        clips: &clips,
        chains: &chains,
        runs: &runs,
        clean_asr: &clean_asr,
        noisy_asr: &noisy_asr,
        noises: &noises,
        snrs: &snrs,
    };
    for recogniser in &recognisers {
        let started = Instant::now();
        let heard = match recogniser {
            Recogniser::PocketSphinx => {
                let lm = args.out.join("texts.arpa");
                language_model(&lm, texts)?;
                transcribe(args, &files, &lm, &args.out)?
                    .into_iter()
                    .map(|(p, text)| (p, Heard { text, confidence: None }))
                    .collect()
            }
            Recogniser::Whisper(name) => whisper(args, name, &files)?,
        };
        eprintln!(
            "{}: {} recordings transcribed in {:.1} s",
            recogniser.name(),
            files.len(),
            started.elapsed().as_secs_f64()
        );
        let mut transcripts = String::new();
        for path in &files {
            let h = heard.get(path).cloned().unwrap_or_default();
            transcripts.push_str(&format!("{}\t{:?}\t{}\n", path.display(), h.confidence, h.text));
        }
        std::fs::write(args.out.join(format!("transcripts-{}.tsv", recogniser.name())), transcripts)?;
        let auto = match (recogniser, runs.first()) {
            (Recogniser::Whisper(_), Some(first)) => Some(auto_choice(&noisy_asr, first, &heard)),
            _ => None,
        };
        println!("\n## {}\n", recogniser.name());
        study.report(&heard, auto.as_ref());
    }
    Ok(())
}

/// The corpus and what each chain made of it.
struct Study<'a> {
    texts: &'a [&'a str],
    clips: &'a [Clip],
    chains: &'a [Chain],
    runs: &'a [ChainRun],
    clean_asr: &'a [PathBuf],
    noisy_asr: &'a BTreeMap<String, PathBuf>,
    noises: &'a [Noise],
    snrs: &'a [f64],
}

impl Study<'_> {
    /// Prints the WER tables of one recogniser; `auto`: its choice per clip between the untouched input and the
    /// first chain's output.
    fn report(&self, heard: &HashMap<PathBuf, Heard>, auto: Option<&BTreeMap<String, PathBuf>>) {
        let Study { texts, clips, chains, runs, clean_asr, noisy_asr, noises, snrs } = *self;
        let said = |path: &PathBuf| heard.get(path).map_or("", |h| h.text.as_str());
        // Tallies per condition: clean (per text), noisy and each chain.
        let clean_tally: Vec<Tally> = clean_asr
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut t = Tally::default();
                t.add(texts[i], said(p));
                t
            })
            .collect();
        let tally = |asr: &BTreeMap<String, PathBuf>, group: &Group| {
            let mut t = Tally::default();
            for clip in clips.iter().filter(|c| group.keeps(c)) {
                if let Some(p) = asr.get(&clip.key()) {
                    t.add(texts[clip.text], said(p));
                }
            }
            t
        };
        let clean_over = |group: &Group| {
            let mut t = Tally::default();
            clips.iter().filter(|c| group.keeps(c)).for_each(|c| t.merge(clean_tally[c.text]));
            t.wer()
        };
        let cell = |clean: f64, noisy: f64, wer: f64| match recovered(clean, noisy, wer) {
            Some(r) => format!("{wer:.1} ({r:+.0} %)"),
            None => format!("{wer:.1}"),
        };

        println!("WER % per condition (in brackets: share of the noise-induced WER recovered)\n");
        let mut names: Vec<&str> = chains.iter().map(|c| c.name.as_str()).collect();
        if auto.is_some() {
            names.push("auto");
        }
        println!("| noise | SNR dB | clean | noisy | {} |", names.join(" | "));
        println!("|---|---|---|---|{}", "---|".repeat(names.len()));
        let mut groups: Vec<Group> = Vec::new();
        for &noise in noises {
            groups.extend(snrs.iter().map(|&snr| Group { noise: Some(noise), snr: Some(snr) }));
        }
        groups.extend(snrs.iter().map(|&snr| Group { noise: None, snr: Some(snr) }));
        groups.push(Group { noise: None, snr: None });
        for group in &groups {
            let (c, n) = (clean_over(group), tally(noisy_asr, group).wer());
            let mut cells: Vec<String> = runs.iter().map(|r| cell(c, n, tally(&r.asr, group).wer())).collect();
            if let Some(auto) = auto {
                cells.push(cell(c, n, tally(auto, group).wer()));
            }
            println!("| {} | {c:.1} | {n:.1} | {} |", group.label(), cells.join(" | "));
        }

        println!("\nPer chain, over all {} recordings\n", clips.len());
        println!("| chain | WER % | noise-induced WER recovered | SNR gain dB | x real time |");
        println!("|---|---|---|---|---|");
        let all = Group { noise: None, snr: None };
        let (c, n) = (clean_over(&all), tally(noisy_asr, &all).wer());
        println!("| clean speech | {c:.1} | - | - | - |");
        println!("| noisy (no enhancement) | {n:.1} | 0 % | 0 | - |");
        let mut best: Option<(f64, &str)> = None;
        for (chain, run) in chains.iter().zip(runs) {
            let w = tally(&run.asr, &all).wer();
            let r = recovered(c, n, w).map_or("-".to_string(), |r| format!("{r:.0} %"));
            println!(
                "| {} | {w:.1} | {r} | {:+.1} | {:.1} |",
                chain.name,
                run.snr_gain_db,
                run.audio_s / run.wall_s.max(1e-9)
            );
            if best.is_none_or(|(b, _)| w < b) {
                best = Some((w, &chain.name));
            }
        }
        if let Some(auto) = auto {
            let w = tally(auto, &all).wer();
            let r = recovered(c, n, w).map_or("-".to_string(), |r| format!("{r:.0} %"));
            let chosen = auto.iter().filter(|(k, p)| noisy_asr.get(*k) != Some(*p)).count();
            println!("| auto ({} or untouched, per clip) | {w:.1} | {r} | - | - |", chains[0].name);
            println!("\nauto took the enhanced scene for {chosen} of {} clips", auto.len());
            if best.is_none_or(|(b, _)| w < b) {
                best = Some((w, "auto"));
            }
        }
        if n < best.map_or(f64::MAX, |(b, _)| b) {
            best = Some((n, "no enhancement"));
        }
        if let Some((w, name)) = best {
            println!("\nLowest WER over all conditions: {name} ({w:.1} %)");
        }
    }
}
