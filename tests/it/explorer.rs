//! The latent explorer (condgen::explorer) on tiny untrained models: one image
//! per grid point per condition in valid PNG data URIs, a static view for
//! notebooks that run no scripts, images that move with the sliders, the same
//! HTML twice from the same seed, bad settings refused.
//!
//! Set CONDGEN_PLOT_OUT=DIR to keep the pages for looking at in a browser.

use crate::common;

use condgen::explorer::{ExplorerConfig, LatentExplorer};
use condgen::model::{LatentPrior, ModelKind};
use condgen::sample::{LatentSource, TrainedModel};
use condgen::train::{Profile, RunDir, TrainConfig};
use condgen::{Error, Experiment};
use tch::{Device, Kind, Tensor};

const STATIC_NOTE: &str = "Interactive in a trusted notebook (File → Trust Notebook); this is the static view.";
const URI: &str = "data:image/png;base64,";

/// A quick-profile model with its initial (seeded) weights, as a loaded run would be.
fn untrained(experiment: Experiment, kind: ModelKind) -> TrainedModel {
    // A CVAE under N(0, I): the explorer's isotropic case (the quick profile's learned prior is per condition).
    let config = TrainConfig::new(experiment, kind, Profile::Quick).with_standard_normal_prior();
    let spec = config.condition_spec();
    tch::manual_seed(7);
    let built = config.build(spec.dim(), Device::Cpu);
    TrainedModel { config, built, spec, run: RunDir::open("untrained"), epoch: 0, latent_prior: None }
}

/// Every `data:` PNG of the page, in order, decoded to grey pixels.
fn images(html: &str) -> Vec<condgen::image::GrayImage> {
    use base64::Engine as _;
    html.match_indices(URI)
        .map(|(at, _)| {
            let rest = &html[at + URI.len()..];
            let end = rest.find('"').expect("a URI ends at its closing quote");
            let png = base64::engine::general_purpose::STANDARD.decode(&rest[..end]).expect("valid base64");
            condgen::image::load_from_memory_with_format(&png, condgen::image::ImageFormat::Png)
                .expect("a valid PNG")
                .to_luma8()
        })
        .collect()
}

/// The 28 × 28 tile of sprite position `i` (`steps` tiles to a row).
fn tile(sprite: &condgen::image::GrayImage, i: usize, steps: usize) -> Vec<u8> {
    let (x0, y0) = ((i % steps) as u32 * 28, (i / steps) as u32 * 28);
    (y0..y0 + 28).flat_map(|y| (x0..x0 + 28).map(move |x| sprite.get_pixel(x, y).0[0])).collect()
}

/// Checks the page of an explorer of `conditions` conditions and returns it.
fn check_page(explorer: &LatentExplorer, conditions: usize, config: &ExplorerConfig, name: &str) -> String {
    let html = explorer.to_html();
    assert_eq!(explorer.conditions(), conditions);
    // The static view comes before the script, and shows the first condition's sprite.
    let script = html.find("<script>").expect("a script");
    assert!(html[..script].contains(STATIC_NOTE), "{name}: the static view says what it is");
    let uris = images(&html);
    assert_eq!(uris.len(), conditions + 1, "{name}: the static image, then one sprite per condition");
    assert_eq!(uris[0], uris[1], "{name}: the static view is the first condition's slider grid");
    let tiles = config.steps.pow(config.directions as u32);
    for (c, sprite) in uris[1..].iter().enumerate() {
        let size = (28 * config.steps as u32, 28 * (tiles / config.steps) as u32);
        assert_eq!(sprite.dimensions(), size, "{name}: condition {c} holds {tiles} images");
        // The two ends of slider 1 (the other sliders at their first position) differ.
        assert_ne!(tile(sprite, 0, config.steps), tile(sprite, config.steps - 1, config.steps), "{name}: {c}");
    }
    // The script's data names every condition once.
    let start = html.rfind("\n({").expect("the script's data") + 2;
    let end = html.rfind(");\n</script>").expect("the script's end");
    let data: serde_json::Value = serde_json::from_str(&html[start..end]).expect("JSON data");
    assert_eq!(data["labels"].as_array().map(Vec::len), Some(conditions));
    assert_eq!(data["sprites"].as_array().map(Vec::len), Some(conditions));
    if let Ok(dir) = std::env::var("CONDGEN_PLOT_OUT") {
        explorer.save_html(&std::path::Path::new(&dir).join(format!("{name}.html"))).unwrap();
    }
    html
}

#[test]
fn a_cgan_explorer_embeds_every_grid_point_of_the_chosen_conditions() {
    let _serial = common::serial();
    let model = untrained(Experiment::K49, ModelKind::Cgan);
    let config = ExplorerConfig { classes: Some(vec![0, 5, 48]), ..Default::default() };
    let explorer = LatentExplorer::for_model(&model, &config).unwrap();
    let html = check_page(&explorer, 6, &config, "explorer-k49-cgan");
    assert!(
        html.contains(r#""labels":["0 あ a, thin","0 あ a, thick","5 か ka, thin""#),
        "class, character, romaji, style"
    );
    assert!(
        html.contains("directions of the noise along which the image changes most"),
        "the caption says how the sliders were chosen"
    );
    // The same seed, the same page (a re-run notebook's output does not change).
    assert_eq!(LatentExplorer::for_model(&model, &config).unwrap().to_html(), html);
    assert!(html.starts_with("<div data-condgen-explorer="));
    assert!(explorer.evcxr_content().starts_with("EVCXR_BEGIN_CONTENT text/html\n<div"));
}

#[test]
fn a_cvae_explorer_follows_its_prior() {
    let _serial = common::serial();
    let mut model = untrained(Experiment::SignLetter, ModelKind::Cvae);
    // Under N(0, I): the directions of z the decoder's image changes most along, 3 sliders.
    let config = ExplorerConfig { steps: 5, directions: 3, ..Default::default() };
    let explorer = LatentExplorer::for_model(&model, &config).unwrap();
    let html = check_page(&explorer, 24, &config, "explorer-sign-cvae-standard");
    assert!(html.contains("directions of z along which") && html.contains(r#""labels":["A","B","C""#));
    // Under a fitted prior: each letter's principal directions. Codes spread
    // mostly along z1 and z2 make an anisotropic prior.
    let spread = Tensor::from_slice(&[[3.0f32, 2.0].as_slice(), &[0.1; 14]].concat());
    let codes = Tensor::randn([24 * 40, 16], (Kind::Float, Device::Cpu)) * spread;
    let letters: Vec<i64> = (0..24 * 40).map(|i| i % 24).collect();
    model.latent_prior = Some(LatentPrior::from_codes(&codes, &letters, 24, 1, 0));
    let config = ExplorerConfig::default();
    let explorer = LatentExplorer::for_model(&model, &config).unwrap();
    let html = check_page(&explorer, 24, &config, "explorer-sign-cvae-fitted");
    assert!(html.contains("principal directions") && html.contains("fitted per-condition prior"));
    // The sampler's source decides: N(0, I) while a fitted prior is loaded.
    let labels = condgen::Experiment::SignLetter.class_names();
    let standard = model.sampler(LatentSource::TrainedPrior).unwrap();
    let html = LatentExplorer::for_sampler(&standard, &labels, &config).unwrap().to_html();
    assert!(html.contains("z from N(0, I)") && html.contains("directions of z along which"));
}

#[test]
fn bad_settings_are_refused() {
    let _serial = common::serial();
    let model = untrained(Experiment::SignLetter, ModelKind::Cgan);
    let refused = |config: ExplorerConfig| match LatentExplorer::for_model(&model, &config) {
        Err(Error::InvalidInput(message)) => message,
        other => panic!("{config:?}: {:?}", other.map(|e| e.conditions())),
    };
    let default = ExplorerConfig::default;
    assert!(refused(ExplorerConfig { steps: 1, ..default() }).contains("steps"));
    assert!(refused(ExplorerConfig { directions: 4, ..default() }).contains("directions"));
    assert!(refused(ExplorerConfig { steps: 9, directions: 3, ..default() }).contains("512 images"));
    assert!(refused(ExplorerConfig { range: f64::NAN, ..default() }).contains("range"));
    assert!(refused(ExplorerConfig { scale: 0, ..default() }).contains("scale"));
    assert!(refused(ExplorerConfig { grey_levels: 1, ..default() }).contains("grey_levels"));
    assert!(refused(ExplorerConfig { classes: Some(vec![]), ..default() }).contains("no classes"));
    assert!(refused(ExplorerConfig { classes: Some(vec![24]), ..default() }).contains("class 24"));
    let sampler = model.sampler(LatentSource::TrainedPrior).unwrap();
    let wrong = LatentExplorer::for_sampler(&sampler, &["A".to_string()], &default());
    assert!(matches!(wrong, Err(Error::InvalidInput(m)) if m.contains("1 labels for 24 conditions")));
}
