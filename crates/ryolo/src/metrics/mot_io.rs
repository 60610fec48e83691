//! MOTChallenge text files (`gt.txt`, tracker results) and sequence folders: reading with file:line errors.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One row of a MOTChallenge file: `frame,id,x,y,w,h[,conf[,class[,visibility[,…]]]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MotRow {
    /// Object or track id.
    pub id: i64,
    /// Box `[x, y, w, h]` (left, top, width, height) as written.
    pub xywh: [f64; 4],
    /// Column 7: GT "consider" flag (0 = ignore) or tracker confidence; 1 when absent.
    pub conf: f64,
    /// Column 8: GT class (MOT16/17/20), −1, or a world coordinate (MOT15 GT); −1 when absent.
    pub class: f64,
    /// Column 9: GT visibility or −1; −1 when absent.
    pub visibility: f64,
    /// 1-based line number in the file (for messages).
    pub line: usize,
}

/// A MOTChallenge file: its rows grouped by frame (ascending), each frame in file order.
#[derive(Clone, Debug, Default)]
pub struct MotFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Frame number → rows.
    pub frames: BTreeMap<u64, Vec<MotRow>>,
}

impl MotFile {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.frames.values().map(Vec::len).sum()
    }

    /// Parses MOTChallenge text (`path` names the file in errors). Fields are separated by commas and/or
    /// blanks; at least 6 fields; frame and id must be whole numbers (frame ≥ 1); an id may appear once per frame.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut frames: BTreeMap<u64, Vec<MotRow>> = BTreeMap::new();
        for (k, raw) in text.lines().enumerate() {
            let line = k + 1;
            let s = raw.trim();
            if s.is_empty() {
                continue;
            }
            let at = || format!("{}:{line}", path.display());
            let fields: Vec<&str> = s
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|f| !f.is_empty())
                .collect();
            if fields.len() < 6 {
                bail!(
                    "{}: {} fields, a MOTChallenge row needs at least 6 (frame,id,x,y,w,h,...): {s:?}",
                    at(),
                    fields.len()
                );
            }
            let num = |i: usize, name: &str| -> Result<f64> {
                let v: f64 = fields[i].parse().map_err(|_| {
                    anyhow::anyhow!(
                        "{}: {name} (column {}) {:?} is not a number",
                        at(),
                        i + 1,
                        fields[i]
                    )
                })?;
                if !v.is_finite() {
                    bail!("{}: {name} (column {}) is {v}", at(), i + 1);
                }
                Ok(v)
            };
            let whole = |i: usize, name: &str| -> Result<i64> {
                let v = num(i, name)?;
                if v.fract() != 0.0 || v.abs() > 9.0e15 {
                    bail!(
                        "{}: {name} (column {}) {v} is not a whole number",
                        at(),
                        i + 1
                    );
                }
                Ok(v as i64)
            };
            let frame = whole(0, "frame")?;
            if frame < 1 {
                bail!("{}: frame {frame} (frames are numbered from 1)", at());
            }
            let id = whole(1, "id")?;
            let xywh = [
                num(2, "x")?,
                num(3, "y")?,
                num(4, "width")?,
                num(5, "height")?,
            ];
            let conf = if fields.len() > 6 {
                num(6, "conf")?
            } else {
                1.0
            };
            let class = if fields.len() > 7 {
                num(7, "class")?
            } else {
                -1.0
            };
            let visibility = if fields.len() > 8 {
                num(8, "visibility")?
            } else {
                -1.0
            };
            let rows = frames.entry(frame as u64).or_default();
            if let Some(first) = rows.iter().find(|r| r.id == id) {
                bail!(
                    "{}: id {id} appears twice in frame {frame} (first on line {})",
                    at(),
                    first.line
                );
            }
            rows.push(MotRow {
                id,
                xywh,
                conf,
                class,
                visibility,
                line,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            frames,
        })
    }

    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// The first row whose frame is above `n` (for "frames outside the sequence" errors).
    pub fn first_row_after(&self, n: u64) -> Option<(u64, &MotRow)> {
        self.frames
            .range(n + 1..)
            .next()
            .and_then(|(f, rows)| rows.iter().min_by_key(|r| r.line).map(|r| (*f, r)))
    }
}

/// One sequence to evaluate: its name, GT file, results file and length when known.
#[derive(Clone, Debug, PartialEq)]
pub struct MotSequence {
    /// Sequence name (the folder name, e.g. `MOT17-02-FRCNN`).
    pub name: String,
    /// The ground-truth file.
    pub gt: PathBuf,
    /// The tracker's results file.
    pub results: PathBuf,
    /// Frames in the sequence: images in `img1/` when present (the seqLength of `seqinfo.ini` otherwise).
    pub num_frames: Option<u64>,
    /// A note about the length (e.g. seqinfo's seqLength disagreeing with `img1/`).
    pub note: Option<String>,
}

/// The GT file of sequence folder `dir`: `gt/gt.txt` or `gt.txt`.
fn gt_file(dir: &Path) -> Option<PathBuf> {
    [dir.join("gt").join("gt.txt"), dir.join("gt.txt")]
        .into_iter()
        .find(|p| p.is_file())
}

/// The length of sequence folder `dir`: the images in `img1/`, else `seqLength` of `seqinfo.ini`.
fn sequence_length(dir: &Path) -> Result<(Option<u64>, Option<String>)> {
    let ini = dir.join("seqinfo.ini");
    let seq_len = if ini.is_file() {
        let text =
            std::fs::read_to_string(&ini).with_context(|| format!("reading {}", ini.display()))?;
        let mut v = None;
        for (k, l) in text.lines().enumerate() {
            if let Some((key, val)) = l.split_once('=') {
                if key.trim().eq_ignore_ascii_case("seqLength") {
                    v = Some(val.trim().parse::<u64>().map_err(|_| {
                        anyhow::anyhow!(
                            "{}:{}: seqLength {:?} is not a whole number",
                            ini.display(),
                            k + 1,
                            val.trim()
                        )
                    })?);
                }
            }
        }
        v
    } else {
        None
    };
    let img = dir.join("img1");
    if img.is_dir() {
        let n = std::fs::read_dir(&img)
            .with_context(|| format!("listing {}", img.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| {
                let p = e.path();
                p.is_file()
                    && p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                        crate::data::dataset::IMG_FORMATS.contains(&x.to_ascii_lowercase().as_str())
                    })
            })
            .count() as u64;
        let note = seq_len.filter(|&s| s != n).map(|s| {
            format!(
                "{}: seqLength {s} but {n} images in img1/; using {n}",
                ini.display()
            )
        });
        return Ok((Some(n), note));
    }
    Ok((seq_len, None))
}

/// The name of the sequence whose GT file is `gt` (`SEQ/gt/gt.txt` or `SEQ/gt.txt` → `SEQ`).
fn name_of(gt: &Path) -> String {
    let mut dir = gt.parent();
    if dir.and_then(|d| d.file_name()).is_some_and(|n| n == "gt") {
        dir = dir.and_then(|d| d.parent());
    }
    dir.and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| {
            gt.file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default()
        })
}

/// The sequences to evaluate. `gt`: a GT file (then `results` is the results file), a sequence folder
/// (`gt/gt.txt` or `gt.txt` inside) or a folder of sequence folders (MOTChallenge `train/`). `results`:
/// a file, or a folder with `<SEQ>.txt` per sequence (the MOTChallenge tracker layout that `yolo track
/// save_mot` writes). Returns the sequences (sorted) and warnings (results files matching no GT sequence).
pub fn discover(gt: &Path, results: &Path) -> Result<(Vec<MotSequence>, Vec<String>)> {
    if !gt.exists() {
        bail!("gt={}: no such file or folder", gt.display());
    }
    if !results.exists() {
        bail!("results={}: no such file or folder", results.display());
    }
    let mut warnings = vec![];
    if gt.is_file() {
        let name = name_of(gt);
        let res = if results.is_dir() {
            results.join(format!("{name}.txt"))
        } else {
            results.to_path_buf()
        };
        if !res.is_file() {
            bail!("no results for sequence {name}: expected {}", res.display());
        }
        let (num_frames, note) = match gt.parent() {
            Some(d) if d.file_name().is_some_and(|n| n == "gt") => {
                sequence_length(d.parent().unwrap_or(d))?
            }
            Some(d) => sequence_length(d)?,
            None => (None, None),
        };
        return Ok((
            vec![MotSequence {
                name,
                gt: gt.to_path_buf(),
                results: res,
                num_frames,
                note,
            }],
            warnings,
        ));
    }
    let dirs: Vec<PathBuf> = if gt_file(gt).is_some() {
        vec![gt.to_path_buf()]
    } else {
        let mut v: Vec<PathBuf> = std::fs::read_dir(gt)
            .with_context(|| format!("listing {}", gt.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && gt_file(p).is_some())
            .collect();
        v.sort();
        v
    };
    if dirs.is_empty() {
        bail!(
            "gt={}: no sequence folder with gt/gt.txt or gt.txt found",
            gt.display()
        );
    }
    let mut seqs = vec![];
    for d in dirs {
        let g = gt_file(&d).unwrap_or_default();
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let res = if results.is_dir() {
            results.join(format!("{name}.txt"))
        } else {
            results.to_path_buf()
        };
        if !res.is_file() {
            bail!("no results for sequence {name}: expected {}", res.display());
        }
        let (num_frames, note) = sequence_length(&d)?;
        seqs.push(MotSequence {
            name,
            gt: g,
            results: res,
            num_frames,
            note,
        });
    }
    if results.is_file() && seqs.len() > 1 {
        bail!(
            "results={} is one file but gt={} has {} sequences: give a results folder with <SEQ>.txt files",
            results.display(),
            gt.display(),
            seqs.len()
        );
    }
    if results.is_dir() {
        let known: std::collections::HashSet<String> =
            seqs.iter().map(|s| format!("{}.txt", s.name)).collect();
        let mut extra: Vec<String> = std::fs::read_dir(results)
            .with_context(|| format!("listing {}", results.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".txt") && !known.contains(n))
            .collect();
        extra.sort();
        for n in extra {
            warnings.push(format!(
                "{}: no GT sequence of that name in {}; not evaluated",
                results.join(n).display(),
                gt.display()
            ));
        }
    }
    Ok((seqs, warnings))
}
