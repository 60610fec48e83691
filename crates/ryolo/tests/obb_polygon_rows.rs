//! OBB label rows with other than 4 points are polygons, as in Ultralytics: kept (not refused),
//! their rotated box the minimum-area rectangle of the points in image pixels, reported per file.
//! Reference: tests/data/obb_polygon_fixture.json (make_obb_polygon_fixture.py), Ultralytics'
//! non-augmented OBB targets of one 200 x 100 image letterboxed to 200 x 200.

mod common;
use ryolo::data::labels::{verify_with, Verdict};
use ryolo::data::LabelFormat;

#[test]
fn polygon_rows_give_ultralytics_rotated_targets() {
    let fx: serde_json::Value =
        serde_json::from_str(include_str!("data/obb_polygon_fixture.json")).unwrap();
    let (w, h) = (
        fx["w"].as_u64().unwrap() as u32,
        fx["h"].as_u64().unwrap() as u32,
    );
    let s = fx["imgsz"].as_f64().unwrap() as f32;
    let d = common::tmp("obb-polygon-rows");
    std::fs::create_dir_all(d.join("images")).unwrap();
    std::fs::create_dir_all(d.join("labels")).unwrap();
    let im = d.join("images/a.png");
    image::RgbImage::from_pixel(w, h, image::Rgb([114, 114, 114]))
        .save(&im)
        .unwrap();
    std::fs::write(d.join("labels/a.txt"), fx["label"].as_str().unwrap()).unwrap();

    let c = verify_with(&im, 3, false, LabelFormat::Obb);
    assert_eq!(c.verdict, Verdict::Found, "{:?}", c.warnings);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].ends_with(
            "labels/a.txt: 3 OBB rows with other than 4 points taken as polygons and fitted with \
             their minimum-area rectangle (as Ultralytics)"
        ),
        "{:?}",
        c.warnings
    );
    let e = c.entry.unwrap();
    let want_cls: Vec<u32> = fx["cls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as u32)
        .collect();
    assert_eq!(e.cls, want_cls);
    // The axis-aligned label boxes are the polygons' extents (what the label checks used).
    let b = e.boxes[1];
    assert!(
        (b[0] - 0.625).abs() < 1e-6 && (b[2] - 0.35).abs() < 1e-6,
        "{b:?}"
    );
    // Letterboxed as Ultralytics' loader: no resize (long side = imgsz), 50 px above.
    let pad_y = (s - h as f32) / 2.0;
    let corners = e.corners.as_ref().unwrap();
    let mut worst = 0f32;
    for (k, (cs, want)) in corners
        .iter()
        .zip(fx["bboxes"].as_array().unwrap())
        .enumerate()
    {
        let px: Vec<[f32; 2]> = cs
            .iter()
            .map(|p| [p[0] * w as f32, p[1] * h as f32 + pad_y])
            .collect();
        let r = ryolo::data::obb::xywhr_from_points(&px);
        let got = [r[0] / s, r[1] / s, r[2] / s, r[3] / s, r[4]];
        for (g, x) in got.iter().zip(want.as_array().unwrap()) {
            let diff = (g - x.as_f64().unwrap() as f32).abs();
            worst = worst.max(diff);
            assert!(diff < 1e-6, "row {k}: {got:?} vs {want}");
        }
    }
    eprintln!("4 rows (4, 6, 3 and 8 points): xywhr within {worst:.1e} of Ultralytics");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn odd_coordinates_and_box_rows_are_still_refused_with_the_line() {
    let d = common::tmp("obb-polygon-bad");
    std::fs::create_dir_all(d.join("images")).unwrap();
    std::fs::create_dir_all(d.join("labels")).unwrap();
    let im = d.join("images/a.png");
    image::RgbImage::new(64, 64).save(&im).unwrap();
    for (text, line, why) in [
        (
            "0 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2\n1 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2 0.3\n",
            2,
            "odd number of coordinates",
        ),
        (
            "0 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2\n1 0.5 0.5 0.2 0.2\n",
            2,
            "labels mix segment and detection rows",
        ),
    ] {
        std::fs::write(d.join("labels/a.txt"), text).unwrap();
        let c = verify_with(&im, 3, false, LabelFormat::Obb);
        assert_eq!(c.verdict, Verdict::Corrupt);
        assert!(
            c.warnings[0].contains(&format!("labels/a.txt:{line}:")) && c.warnings[0].contains(why),
            "{:?}",
            c.warnings
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}
