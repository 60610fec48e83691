//! OBB batch plots draw rotated outlines, as Ultralytics' `plot_images` does for `xywhr` boxes:
//! a known rotated label shows on `train_batch0.jpg` and `val_batch0_labels.jpg` along its four
//! sides, and not at the corners of its axis-aligned bounds.

mod common;
use common::{args, tmp};
use image::RgbImage;

/// Centre, size and angle of the label, in pixels of the 128 x 128 image.
const BOX: [f32; 5] = [64.0, 64.0, 90.0, 30.0, 0.5];

/// Whether the class-0 colour (4, 42, 255) shows within one pixel of (x, y) on a grey picture.
fn blue_near(img: &RgbImage, x: f32, y: f32) -> bool {
    let (x, y) = (x.round() as i64, y.round() as i64);
    (-1..=1).any(|dy| {
        (-1..=1).any(|dx| {
            let p = img.get_pixel((x + dx) as u32, (y + dy) as u32);
            p[2] as i32 - p[0] as i32 > 60
        })
    })
}

/// The outline is there (mid-points of three sides; the fourth is under the label box) and the
/// axis-aligned bounds are not (three of their corners; the fourth is under the label box).
fn assert_rotated_outline(img: &RgbImage, what: &str) {
    let c = ryolo::ops::obb::xywhr_to_corners(&BOX);
    for (a, b) in [(1, 2), (2, 3), (3, 0)] {
        let (x, y) = ((c[a][0] + c[b][0]) / 2.0, (c[a][1] + c[b][1]) / 2.0);
        assert!(
            blue_near(img, x, y),
            "{what}: no outline at ({x:.1}, {y:.1})"
        );
    }
    let xs = c.map(|p| p[0]);
    let ys = c.map(|p| p[1]);
    let (x0, x1) = (
        xs.iter().cloned().fold(f32::MAX, f32::min),
        xs.iter().cloned().fold(f32::MIN, f32::max),
    );
    let (y0, y1) = (
        ys.iter().cloned().fold(f32::MAX, f32::min),
        ys.iter().cloned().fold(f32::MIN, f32::max),
    );
    for (x, y) in [(x0, y0), (x1, y0), (x0, y1)] {
        assert!(
            !blue_near(img, x, y),
            "{what}: an axis-aligned corner at ({x:.1}, {y:.1})"
        );
    }
}

#[test]
fn train_and_val_batch_images_draw_the_rotated_outline() {
    let d = tmp("obb-plots");
    let data = d.join("data");
    for split in ["train", "val"] {
        std::fs::create_dir_all(data.join("images").join(split)).unwrap();
        std::fs::create_dir_all(data.join("labels").join(split)).unwrap();
        RgbImage::from_pixel(128, 128, image::Rgb([128, 128, 128]))
            .save(data.join(format!("images/{split}/a.png")))
            .unwrap();
        let c = ryolo::ops::obb::xywhr_to_corners(&BOX);
        let row: Vec<String> = c
            .iter()
            .flat_map(|p| [p[0] / 128.0, p[1] / 128.0])
            .map(|v| format!("{v:.6}"))
            .collect();
        std::fs::write(
            data.join(format!("labels/{split}/a.txt")),
            format!("0 {}\n", row.join(" ")),
        )
        .unwrap();
    }
    let yaml = data.join("data.yaml");
    std::fs::write(
        &yaml,
        format!(
            "path: {}\ntrain: images/train\nval: images/val\nnames: ['plane']\n",
            data.display()
        ),
    )
    .unwrap();
    let a = args(&format!(
        "model=yolo11n-obb.yaml data={} epochs=1 imgsz=128 batch=1 seed=0 workers=0 project={} name=run mosaic=0 hsv_h=0 hsv_s=0 hsv_v=0 fliplr=0 translate=0 scale=0 warmup_epochs=0 val=False",
        yaml.display(),
        d.display()
    ));
    ryolo::engine::train::train(&a, &mut ryolo::engine::train::Callbacks::default()).unwrap();
    let run = d.join("run");
    // One 128 px image: the plot is that image at scale 1 (augmentation off: no move); validation
    // letterboxes it to 160 (rect shape with half a stride of padding), 16 px each side.
    for (f, side) in [("train_batch0.jpg", 128), ("val_batch0_labels.jpg", 160)] {
        let img = image::open(run.join(f)).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (side, side), "{f}");
        let pad = (side - 128) / 2;
        let inner = image::imageops::crop_imm(&img, pad, pad, 128, 128).to_image();
        assert_rotated_outline(&inner, f);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn rotated_batch_plot_scales_each_box_into_its_tile() {
    // Four 128 px images in a 2 x 2 grid, column-major as Ultralytics' plot_images: image 1 is
    // below image 0 (x = w·(k // 2), y = h·(k % 2)).
    let d = tmp("obb-plots-grid");
    let im = ryolo::ops::Rgb {
        w: 128,
        h: 128,
        data: vec![128; 128 * 128 * 3],
    };
    let items: Vec<(&ryolo::ops::Rgb, ryolo::plot::obb::RotatedBatchBoxes)> = (0..4)
        .map(|k| (&im, if k == 1 { vec![(BOX, 0, None)] } else { vec![] }))
        .collect();
    let out = d.join("grid.jpg");
    ryolo::plot::obb::plot_batch_rotated(&items, &["plane".to_string()], &out).unwrap();
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (256, 256));
    let tile = image::imageops::crop_imm(&img, 0, 128, 128, 128).to_image();
    assert_rotated_outline(&tile, "tile 1");
    for (x, y) in [(0, 0), (128, 0), (128, 128)] {
        let other = image::imageops::crop_imm(&img, x, y, 128, 128).to_image();
        assert!(
            !other.pixels().any(|p| p[2] as i32 - p[0] as i32 > 60),
            "a box in the tile at ({x}, {y})"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}
