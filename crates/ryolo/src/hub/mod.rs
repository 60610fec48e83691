//! First-run downloads, as Ultralytics does them: official weights (`yolo11n.pt`) from the
//! `ultralytics/assets` GitHub release into `weights_dir` ([`assets`]), the built-in data YAMLs
//! (`coco8.yaml`) and their dataset zips into `datasets_dir` ([`datasets`]), over one careful
//! HTTP download ([`download`]: resume, size and content checks, atomic rename, a one-line
//! offline error that says what to fetch by hand). `RYOLO_ASSETS_URL` replaces the GitHub release
//! base (a mirror, or a local server in tests).

pub mod assets;
pub mod datasets;
pub mod download;
