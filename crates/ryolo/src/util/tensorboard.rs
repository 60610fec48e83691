//! TensorBoard event files (`events.out.tfevents.*`): TFRecord-framed `Event` protobufs with scalar
//! summaries, as Ultralytics' TensorBoard callback writes them (settings `tensorboard=True`).

use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `tensorflow.Summary.Value` (the scalar form).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// Scalar name, e.g. `train/box_loss`.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// The value (a oneof member in TensorFlow's proto: always written, zero included).
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// Values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Event` (the fields TensorBoard reads for scalars).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global step (the epoch).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// `brain.Event:2` in the first record.
    #[prost(string, tag = "3")]
    pub file_version: String,
    /// The scalars.
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// TFRecord's masked CRC32-C.
fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its CRC, the data, its CRC.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// An open event file in a run folder.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<time>.<host>` with its version record.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "localhost".into());
        let path = dir.join(format!(
            "events.out.tfevents.{}.{}",
            now() as u64,
            host.trim()
        ));
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = Self { path, file };
        w.write(&Event {
            wall_time: now(),
            file_version: "brain.Event:2".into(),
            ..Default::default()
        })?;
        Ok(w)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one event and flushes it.
    fn write(&mut self, e: &Event) -> Result<()> {
        let data = prost::Message::encode_to_vec(e);
        self.file
            .write_all(&record(&data))
            .and_then(|_| self.file.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Writes named scalars at a step.
    pub fn scalars(&mut self, step: i64, items: &[(String, f64)]) -> Result<()> {
        let value = items
            .iter()
            .map(|(tag, v)| SummaryValue {
                tag: tag.clone(),
                simple_value: Some(*v as f32),
            })
            .collect();
        self.write(&Event {
            wall_time: now(),
            step,
            summary: Some(Summary { value }),
            ..Default::default()
        })
    }
}

/// Reads every event of a file, checking each record's CRCs.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    let mut at = 0usize;
    let bad = |what: &str, at: usize| anyhow!("{}: {what} at byte {at}", path.display());
    while at < bytes.len() {
        let head = bytes
            .get(at..at + 12)
            .ok_or_else(|| bad("truncated record header", at))?;
        let (len, crc) = head.split_at(8);
        if masked_crc(len).to_le_bytes() != crc {
            return Err(bad("bad length CRC", at));
        }
        let n = u64::from_le_bytes(len.try_into().map_err(|_| bad("bad length", at))?) as usize;
        let data = bytes
            .get(at + 12..at + 12 + n)
            .ok_or_else(|| bad("truncated record", at))?;
        let crc = bytes
            .get(at + 12 + n..at + 16 + n)
            .ok_or_else(|| bad("truncated CRC", at))?;
        if masked_crc(data).to_le_bytes() != crc {
            return Err(bad("bad data CRC", at));
        }
        out.push(<Event as prost::Message>::decode(data).map_err(|e| bad(&e.to_string(), at))?);
        at += 16 + n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_with_checked_crcs() {
        // CRC32-C's standard check value.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        let w = std::env::temp_dir().join(format!("ryolo-tb-{}", std::process::id()));
        let mut ew = EventWriter::create(&w).unwrap();
        ew.scalars(
            1,
            &[("train/box_loss".into(), 1.5), ("lr/pg0".into(), 0.01)],
        )
        .unwrap();
        let ev = read_events(ew.path()).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].file_version, "brain.Event:2");
        let s = ev[1].summary.as_ref().unwrap();
        assert_eq!(
            (ev[1].step, s.value[0].tag.as_str(), s.value[0].simple_value),
            (1, "train/box_loss", Some(1.5))
        );
        let _ = std::fs::remove_dir_all(&w);
    }
}
