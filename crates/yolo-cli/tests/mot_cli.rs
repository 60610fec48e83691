//! `yolo data mot`: MOTChallenge evaluation from the command line (TUD folders, JSON output, errors).

mod common;
use common::{shared, tmp, yolo};

#[test]
fn data_mot_prints_the_table_and_saves_json() {
    let Some(sh) = shared() else { return };
    let tud = sh.join("datasets/mot-metrics-tud");
    let d = tmp("data-mot");
    // MOTChallenge tracker layout: one <SEQ>.txt per sequence (what `yolo track save_mot` writes).
    let res = d.join("res");
    std::fs::create_dir_all(&res).unwrap();
    for s in ["TUD-Campus", "TUD-Stadtmitte"] {
        std::fs::copy(tud.join(s).join("test.txt"), res.join(format!("{s}.txt"))).unwrap();
    }
    std::fs::write(res.join("extra.txt"), "1,1,0,0,1,1\n").unwrap();
    let (ok, out) = yolo(
        &[
            "data",
            "mot",
            &format!("gt={}", tud.display()),
            &format!("results={}", res.display()),
            "save_json=m.json",
            "iou=0.3",
        ],
        &d,
    );
    assert!(ok, "{out}");
    assert!(out.contains("MOT15 rules"), "{out}");
    assert!(out.contains("'iou' is not used"), "{out}");
    assert!(out.contains("extra.txt: no GT sequence"), "{out}");
    let overall = out.lines().find(|l| l.starts_with("OVERALL")).unwrap();
    let cols: Vec<&str> = overall.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "OVERALL", "62.4%", "79.9%", "51.2%", "60.3%", "94.0%", "18", "6", "10", "2", "58",
            "602", "14", "13", "55.5%", "0.330", "40.0%"
        ],
        "{out}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("m.json")).unwrap()).unwrap();
    assert_eq!(j[0]["name"], "TUD-Campus");
    assert_eq!(format!("{:.6}", j[2]["idf1"].as_f64().unwrap()), "0.624296");
    assert_eq!(j[1]["num_switches"], 7);
    assert_eq!(format!("{:.6}", j[2]["hota"].as_f64().unwrap()), "0.399957");

    // A bad row is named by file and line; missing arguments are explained.
    std::fs::write(res.join("TUD-Campus.txt"), "1,1,2,3,4,5\n1,2,a,3,4,5\n").unwrap();
    let (ok, out) = yolo(
        &[
            "data",
            "mot",
            &format!("gt={}", tud.display()),
            &format!("results={}", res.display()),
        ],
        &d,
    );
    assert!(
        !ok && out.contains("TUD-Campus.txt:2: x (column 3)"),
        "{out}"
    );
    let (ok, out) = yolo(&["data", "mot", "results=x"], &d);
    assert!(!ok && out.contains("needs gt="), "{out}");
}
