//! Tracker YAMLs: the built-in `bytetrack.yaml`, `botsort.yaml`, `tracktrack.yaml`, user files and overrides.

use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::Value;

/// Built-in `bytetrack.yaml` (Ultralytics 8.4.190 defaults).
pub const BYTETRACK_YAML: &str = "\
tracker_type: bytetrack # bytetrack
track_high_thresh: 0.25 # first association threshold
track_low_thresh: 0.1 # second association threshold
new_track_thresh: 0.25 # start a track when no match is at least this confident
track_buffer: 30 # frames a lost track is kept
match_thresh: 0.8 # cost limit of the first association
fuse_score: True # multiply IoU by the detection score in the cost
";

/// Built-in `botsort.yaml` (Ultralytics 8.4.190 defaults).
pub const BOTSORT_YAML: &str = "\
tracker_type: botsort # botsort
track_high_thresh: 0.25 # first association threshold
track_low_thresh: 0.1 # second association threshold
new_track_thresh: 0.25 # start a track when no match is at least this confident
track_buffer: 30 # frames a lost track is kept
match_thresh: 0.8 # cost limit of the first association
fuse_score: True # multiply IoU by the detection score in the cost
gmc_method: sparseOptFlow # camera motion compensation: sparseOptFlow, orb, sift, ecc, none
proximity_thresh: 0.5 # ReID: IoU needed to consider appearance
appearance_thresh: 0.8 # ReID: appearance similarity needed
with_reid: False # ReID on/off
model: auto # ReID encoder: auto = detector features
";

/// Built-in `tracktrack.yaml` (Ultralytics 8.4.190 defaults; the default tracker).
pub const TRACKTRACK_YAML: &str = "\
tracker_type: tracktrack # tracktrack
track_high_thresh: 0.6 # high detections: main association, may start tracks
track_low_thresh: 0.25 # low detections: main association with penalty_p
new_track_thresh: 0.7 # a leftover high detection starts a track only above this
track_buffer: 30 # frames a lost track is kept
match_thresh: 0.7 # starting threshold of the iterative association
lost_match_thr: 0.0 # relaxed re-binding of still-lost tracks; 0 disables it
iou_weight: 0.5 # weight of the HMIoU distance (ReID only)
reid_weight: 0.5 # weight of the cosine distance (ReID only)
conf_weight: 0.1 # weight of the confidence distance
angle_weight: 0.05 # weight of the corner-angle distance
penalty_p: 0.2 # cost penalty of low detections
penalty_q: 0.4 # cost penalty of recovered detections
reduce_step: 0.05 # threshold reduction per association iteration
tai_thr: 0.55 # IoU limit of track-aware initialization
min_track_len: 3 # matched frames before a new track is confirmed
gmc_method: sparseOptFlow # camera motion compensation: sparseOptFlow, orb, sift, ecc, none
with_reid: False # appearance cue on/off
model: auto # ReID encoder: auto = detector features
";

/// Which tracker a configuration selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackerType {
    /// `bytetrack`.
    ByteTrack,
    /// `botsort`.
    BotSort,
    /// `tracktrack` (the 8.4 default).
    TrackTrack,
}

/// Global motion compensation method (`gmc_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GmcMethod {
    /// `none` / `None`.
    None,
    /// `sparseOptFlow` (default).
    SparseOptFlow,
    /// `orb`.
    Orb,
    /// `sift`.
    Sift,
    /// `ecc`.
    Ecc,
}

/// Every tracker YAML key, typed (keys a tracker does not read keep their defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerConfig {
    /// `tracker_type`.
    pub tracker_type: TrackerType,
    /// `track_high_thresh`.
    pub track_high_thresh: f64,
    /// `track_low_thresh`.
    pub track_low_thresh: f64,
    /// `new_track_thresh`.
    pub new_track_thresh: f64,
    /// `track_buffer`.
    pub track_buffer: u32,
    /// `match_thresh`.
    pub match_thresh: f64,
    /// `fuse_score` (ByteTrack, BoT-SORT).
    pub fuse_score: bool,
    /// `gmc_method` (BoT-SORT, TrackTrack).
    pub gmc_method: GmcMethod,
    /// `proximity_thresh` (BoT-SORT ReID).
    pub proximity_thresh: f64,
    /// `appearance_thresh` (BoT-SORT ReID).
    pub appearance_thresh: f64,
    /// `with_reid`.
    pub with_reid: bool,
    /// `model` (ReID encoder).
    pub model: String,
    /// `lost_match_thr` (TrackTrack).
    pub lost_match_thr: f64,
    /// `iou_weight` (TrackTrack).
    pub iou_weight: f64,
    /// `reid_weight` (TrackTrack).
    pub reid_weight: f64,
    /// `conf_weight` (TrackTrack).
    pub conf_weight: f64,
    /// `angle_weight` (TrackTrack).
    pub angle_weight: f64,
    /// `penalty_p` (TrackTrack).
    pub penalty_p: f64,
    /// `penalty_q` (TrackTrack).
    pub penalty_q: f64,
    /// `reduce_step` (TrackTrack).
    pub reduce_step: f64,
    /// `tai_thr` (TrackTrack).
    pub tai_thr: f64,
    /// `min_track_len` (TrackTrack).
    pub min_track_len: i64,
}

/// Every key the tracker YAMLs may hold.
pub const KEYS: &[&str] = &[
    "tracker_type",
    "track_high_thresh",
    "track_low_thresh",
    "new_track_thresh",
    "track_buffer",
    "match_thresh",
    "fuse_score",
    "gmc_method",
    "proximity_thresh",
    "appearance_thresh",
    "with_reid",
    "model",
    "lost_match_thr",
    "iou_weight",
    "reid_weight",
    "conf_weight",
    "angle_weight",
    "penalty_p",
    "penalty_q",
    "reduce_step",
    "tai_thr",
    "min_track_len",
];

impl TrackerConfig {
    /// The built-in YAML text of a tracker type.
    pub fn builtin_yaml(t: TrackerType) -> &'static str {
        match t {
            TrackerType::ByteTrack => BYTETRACK_YAML,
            TrackerType::BotSort => BOTSORT_YAML,
            TrackerType::TrackTrack => TRACKTRACK_YAML,
        }
    }

    /// The defaults of tracker type `t` (its built-in YAML).
    pub fn defaults(t: TrackerType) -> Self {
        let mut c = Self {
            tracker_type: t,
            track_high_thresh: 0.0,
            track_low_thresh: 0.0,
            new_track_thresh: 0.0,
            track_buffer: 0,
            match_thresh: 0.0,
            fuse_score: true,
            gmc_method: GmcMethod::None,
            proximity_thresh: 0.5,
            appearance_thresh: 0.8,
            with_reid: false,
            model: "auto".into(),
            lost_match_thr: 0.0,
            iou_weight: 0.5,
            reid_weight: 0.5,
            conf_weight: 0.1,
            angle_weight: 0.05,
            penalty_p: 0.2,
            penalty_q: 0.4,
            reduce_step: 0.05,
            tai_thr: 0.55,
            min_track_len: 3,
        };
        let name = format!("built-in {}", builtin_name(t));
        let map = parse_map(Self::builtin_yaml(t), &name).expect("built-in tracker YAML parses");
        for (k, v) in &map {
            c.set(k, v, &name)
                .expect("built-in tracker YAML keys are valid");
        }
        c
    }

    /// Loads `tracker=`: a built-in name (`bytetrack.yaml`, `botsort.yaml`, `tracktrack.yaml`, with or
    /// without `.yaml`) or a YAML file path.
    pub fn load(name_or_path: &str) -> Result<Self> {
        let stem = name_or_path.strip_suffix(".yaml").unwrap_or(name_or_path);
        match stem {
            "bytetrack" => return Ok(Self::defaults(TrackerType::ByteTrack)),
            "botsort" => return Ok(Self::defaults(TrackerType::BotSort)),
            "tracktrack" => return Ok(Self::defaults(TrackerType::TrackTrack)),
            _ => {}
        }
        let text = std::fs::read_to_string(name_or_path).with_context(|| {
            format!(
                "tracker '{name_or_path}': not a built-in tracker (bytetrack.yaml, botsort.yaml, tracktrack.yaml) \
                 and not a readable file"
            )
        })?;
        Self::from_yaml_str(&text, name_or_path)
    }

    /// Parses a tracker YAML (`origin` names it in errors): `tracker_type` selects the defaults, every
    /// other key overrides them; unknown keys and bad values are errors.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Self> {
        let map = parse_map(text, origin)?;
        let ty = map
            .iter()
            .find(|(k, _)| k == "tracker_type")
            .ok_or_else(|| anyhow!("{origin}: key 'tracker_type' is missing"))?;
        let mut c = Self::defaults(parse_type(&ty.1, origin)?);
        for (k, v) in &map {
            c.set(k, v, origin)?;
        }
        Ok(c)
    }

    /// Applies `key=value` overrides (values in YAML syntax), e.g. `track_buffer=60`.
    pub fn with_overrides(mut self, overrides: &[(String, String)]) -> Result<Self> {
        for (k, v) in overrides {
            let val: Value = serde_yaml::from_str(v)
                .with_context(|| format!("tracker override {k}={v}: not a YAML value"))?;
            if k == "tracker_type" {
                let t = parse_type(&val, "tracker override")?;
                if t != self.tracker_type {
                    bail!("tracker override tracker_type={v}: load that tracker's YAML instead");
                }
            }
            self.set(k, &val, "tracker override")?;
        }
        Ok(self)
    }

    /// Sets one key from a YAML value.
    pub fn set(&mut self, key: &str, v: &Value, origin: &str) -> Result<()> {
        let num = |v: &Value| -> Result<f64> {
            v.as_f64()
                .ok_or_else(|| anyhow!("{origin}: key '{key}' must be a number, got {v:?}"))
        };
        match key {
            "tracker_type" => {
                let t = parse_type(v, origin)?;
                if t != self.tracker_type {
                    bail!("{origin}: tracker_type changed while reading");
                }
            }
            "track_high_thresh" => self.track_high_thresh = num(v)?,
            "track_low_thresh" => self.track_low_thresh = num(v)?,
            "new_track_thresh" => self.new_track_thresh = num(v)?,
            "track_buffer" => {
                self.track_buffer =
                    v.as_u64()
                        .and_then(|x| u32::try_from(x).ok())
                        .ok_or_else(|| {
                            anyhow!(
                        "{origin}: key 'track_buffer' must be a non-negative integer, got {v:?}"
                    )
                        })?
            }
            "match_thresh" => self.match_thresh = num(v)?,
            "fuse_score" => self.fuse_score = parse_bool(v, key, origin)?,
            "gmc_method" => self.gmc_method = parse_gmc(v, origin)?,
            "proximity_thresh" => self.proximity_thresh = num(v)?,
            "appearance_thresh" => self.appearance_thresh = num(v)?,
            "with_reid" => self.with_reid = parse_bool(v, key, origin)?,
            "model" => {
                self.model = match v {
                    Value::String(s) => s.clone(),
                    _ => bail!("{origin}: key 'model' must be a string, got {v:?}"),
                }
            }
            "lost_match_thr" => self.lost_match_thr = num(v)?,
            "iou_weight" => self.iou_weight = num(v)?,
            "reid_weight" => self.reid_weight = num(v)?,
            "conf_weight" => self.conf_weight = num(v)?,
            "angle_weight" => self.angle_weight = num(v)?,
            "penalty_p" => self.penalty_p = num(v)?,
            "penalty_q" => self.penalty_q = num(v)?,
            "reduce_step" => self.reduce_step = num(v)?,
            "tai_thr" => self.tai_thr = num(v)?,
            "min_track_len" => {
                self.min_track_len = v.as_i64().ok_or_else(|| {
                    anyhow!("{origin}: key 'min_track_len' must be an integer, got {v:?}")
                })?
            }
            _ => {
                let near = KEYS.iter().max_by(|a, b| {
                    strsim::jaro_winkler(key, a).total_cmp(&strsim::jaro_winkler(key, b))
                });
                bail!(
                    "{origin}: unknown tracker key '{key}'{}; valid keys: {}",
                    near.map(|n| format!(" (did you mean '{n}'?)"))
                        .unwrap_or_default(),
                    KEYS.join(", ")
                )
            }
        }
        Ok(())
    }
}

/// The built-in file name of tracker type `t`.
fn builtin_name(t: TrackerType) -> &'static str {
    match t {
        TrackerType::ByteTrack => "bytetrack.yaml",
        TrackerType::BotSort => "botsort.yaml",
        TrackerType::TrackTrack => "tracktrack.yaml",
    }
}

/// A YAML mapping as ordered `(key, value)` pairs.
fn parse_map(text: &str, origin: &str) -> Result<Vec<(String, Value)>> {
    let v: Value =
        serde_yaml::from_str(text).with_context(|| format!("{origin}: not valid YAML"))?;
    let Value::Mapping(m) = v else {
        bail!("{origin}: a tracker YAML must be a mapping of keys to values")
    };
    m.into_iter()
        .map(|(k, v)| match k {
            Value::String(s) => Ok((s, v)),
            other => Err(anyhow!("{origin}: key {other:?} is not a string")),
        })
        .collect()
}

/// `tracker_type` value → type; the other 8.4 trackers are named and refused.
fn parse_type(v: &Value, origin: &str) -> Result<TrackerType> {
    match v.as_str() {
        Some("bytetrack") => Ok(TrackerType::ByteTrack),
        Some("botsort") => Ok(TrackerType::BotSort),
        Some("tracktrack") => Ok(TrackerType::TrackTrack),
        Some(t @ ("ocsort" | "deepocsort" | "fasttrack")) => {
            bail!("{origin}: tracker_type '{t}' is not implemented (bytetrack, botsort, tracktrack are)")
        }
        _ => bail!(
            "{origin}: tracker_type must be 'bytetrack', 'botsort' or 'tracktrack', got {v:?}"
        ),
    }
}

/// `gmc_method` value → method (`none`/`None`/null: no compensation).
fn parse_gmc(v: &Value, origin: &str) -> Result<GmcMethod> {
    match v {
        Value::Null => Ok(GmcMethod::None),
        Value::String(s) => match s.as_str() {
            "none" | "None" => Ok(GmcMethod::None),
            "sparseOptFlow" => Ok(GmcMethod::SparseOptFlow),
            "orb" => Ok(GmcMethod::Orb),
            "sift" => Ok(GmcMethod::Sift),
            "ecc" => Ok(GmcMethod::Ecc),
            _ => bail!(
                "{origin}: gmc_method must be sparseOptFlow, orb, sift, ecc or none, got '{s}'"
            ),
        },
        _ => bail!("{origin}: gmc_method must be a string, got {v:?}"),
    }
}

/// A YAML boolean (`True`/`False` are booleans in YAML 1.1 files and strings to serde_yaml).
fn parse_bool(v: &Value, key: &str, origin: &str) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if matches!(s.as_str(), "True" | "true") => Ok(true),
        Value::String(s) if matches!(s.as_str(), "False" | "false") => Ok(false),
        _ => bail!("{origin}: key '{key}' must be True or False, got {v:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_have_the_documented_defaults() {
        let b = TrackerConfig::load("bytetrack.yaml").unwrap();
        assert_eq!(
            (b.track_high_thresh, b.match_thresh, b.track_buffer),
            (0.25, 0.8, 30)
        );
        assert!(b.fuse_score);
        let s = TrackerConfig::load("botsort").unwrap();
        assert_eq!(s.gmc_method, GmcMethod::SparseOptFlow);
        let t = TrackerConfig::load("tracktrack.yaml").unwrap();
        assert_eq!(
            (t.track_high_thresh, t.new_track_thresh, t.min_track_len),
            (0.6, 0.7, 3)
        );
    }

    #[test]
    fn user_yaml_overrides_and_unknown_keys() {
        let c = TrackerConfig::from_yaml_str(
            "tracker_type: botsort\ngmc_method: none\ntrack_buffer: 10\n",
            "my.yaml",
        )
        .unwrap();
        assert_eq!(
            (c.gmc_method, c.track_buffer, c.match_thresh),
            (GmcMethod::None, 10, 0.8)
        );
        let e =
            TrackerConfig::from_yaml_str("tracker_type: bytetrack\ntrack_bufer: 3\n", "my.yaml")
                .unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("my.yaml") && msg.contains("track_bufer") && msg.contains("track_buffer"),
            "{msg}"
        );
        let e = TrackerConfig::from_yaml_str("tracker_type: ocsort\n", "o.yaml").unwrap_err();
        assert!(format!("{e:#}").contains("ocsort"));
        let e = TrackerConfig::from_yaml_str("track_buffer: 3\n", "x.yaml").unwrap_err();
        assert!(format!("{e:#}").contains("tracker_type"));
        let e =
            TrackerConfig::from_yaml_str("tracker_type: bytetrack\nmatch_thresh: high\n", "x.yaml")
                .unwrap_err();
        assert!(format!("{e:#}").contains("match_thresh"));
        let o = TrackerConfig::load("bytetrack.yaml")
            .unwrap()
            .with_overrides(&[
                ("track_buffer".into(), "60".into()),
                ("fuse_score".into(), "False".into()),
            ])
            .unwrap();
        assert_eq!((o.track_buffer, o.fuse_score), (60, false));
        assert!(TrackerConfig::load("/nonexistent/t.yaml").is_err());
    }
}
