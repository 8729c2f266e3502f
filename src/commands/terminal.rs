//! Words and bars for people at a terminal: "1 scene" / "2 scenes", short durations, a text progress bar, and a
//! line redrawn in place.

use std::io::Write;

/// Width of a progress bar, characters.
const BAR: usize = 30;

/// "1 scene", "2 scenes".
pub fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

/// "42 s", "3 min 5 s", "2 h 10 min".
pub fn duration(s: f64) -> String {
    let s = s.max(0.0) as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// `[#########---------]` for a share between 0 and 1.
pub fn bar(share: f64) -> String {
    let filled = ((share.clamp(0.0, 1.0) * BAR as f64).round() as usize).min(BAR);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(BAR - filled))
}

/// Redraws the current line of `out` with `line`; `None` clears it.
pub fn redraw(out: &mut impl Write, line: Option<&str>) -> std::io::Result<()> {
    match line {
        Some(line) => write!(out, "\r\x1b[2K{line}")?,
        None => write!(out, "\r\x1b[2K")?,
    }
    out.flush()
}
