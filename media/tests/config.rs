//! The encoder config read from TOML, as the daemon's config file holds it.

use kissbooth_media::{
    AI_GENERATED_LABEL, ConfigError, EncodeError, EncoderChoice, EncoderConfig, VideoMetadata,
    VideoSpec,
};

#[derive(Debug, serde::Deserialize)]
struct File {
    encoder: EncoderConfig,
}

fn parse(snippet: &str) -> Result<EncoderConfig, toml::de::Error> {
    toml::from_str::<File>(snippet).map(|f| f.encoder)
}

#[test]
fn config_from_toml_snippet_with_defaults() {
    let cfg = parse("[encoder]\nbitrate_kbps = 2500\n").unwrap();
    assert_eq!(cfg.bitrate_kbps, 2500);
    assert_eq!(cfg.encoder, EncoderChoice::Auto);
    assert_eq!(cfg.keyframe_interval_s, 1.0);
    assert_eq!(cfg.x264_preset, "superfast");
    cfg.validate().unwrap();

    let empty = parse("[encoder]\n").unwrap();
    assert_eq!(empty, EncoderConfig::default());
    assert_eq!(empty.bitrate_kbps, 4000);
}

#[test]
fn config_from_a_full_toml_snippet() {
    let cfg = parse(
        r#"
        [encoder]
        encoder = "openh264enc"
        bitrate_kbps = 6000
        keyframe_interval_s = 0.5
        x264_preset = "faster"
        "#,
    )
    .unwrap();
    assert_eq!(cfg.encoder, EncoderChoice::Openh264enc);
    assert_eq!(cfg.keyframe_interval_frames(24), 12);
    cfg.validate().unwrap();
}

#[test]
fn config_round_trips_through_toml() {
    let cfg = EncoderConfig {
        encoder: EncoderChoice::X264enc,
        ..EncoderConfig::default()
    };
    let text = toml::to_string(&cfg).unwrap();
    assert!(text.contains("encoder = \"x264enc\""), "{text}");
    assert_eq!(toml::from_str::<EncoderConfig>(&text).unwrap(), cfg);
}

#[test]
fn rejects_unknown_encoder_in_config() {
    let err = parse("[encoder]\nencoder = \"ffmpeg\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("ffmpeg") && msg.contains("x264enc"), "{msg}");
    let err = "vaapih264enc".parse::<EncoderChoice>().unwrap_err();
    assert!(matches!(err, ConfigError::UnknownEncoder { .. }));
    assert_eq!(
        "auto".parse::<EncoderChoice>().unwrap(),
        EncoderChoice::Auto
    );
}

#[test]
fn rejects_unknown_fields_in_config() {
    let err = parse("[encoder]\nbitrate = 4000\n").unwrap_err();
    assert!(err.to_string().contains("bitrate"), "{err}");
}

#[test]
fn rejects_an_unknown_x264_preset() {
    let cfg = parse("[encoder]\nx264_preset = \"turbo\"\n").unwrap();
    let err = cfg.validate().unwrap_err();
    assert_eq!(
        err,
        ConfigError::UnknownX264Preset {
            preset: "turbo".into()
        }
    );
    assert!(
        err.to_string().contains("veryfast"),
        "lists the valid presets: {err}"
    );
}

#[test]
fn rejects_out_of_range_bitrate_and_keyframe_interval() {
    for bad in [0, 99, 100_001] {
        let cfg = EncoderConfig {
            bitrate_kbps: bad,
            ..EncoderConfig::default()
        };
        assert_eq!(cfg.validate(), Err(ConfigError::Bitrate { value: bad }));
    }
    for bad in [0.0, -1.0, 10.5, f32::NAN, f32::INFINITY] {
        let cfg = EncoderConfig {
            keyframe_interval_s: bad,
            ..EncoderConfig::default()
        };
        assert!(
            matches!(cfg.validate(), Err(ConfigError::KeyframeInterval { .. })),
            "{bad}"
        );
    }
    // A tiny interval still gives a keyframe every frame, never zero.
    let cfg = EncoderConfig {
        keyframe_interval_s: 0.01,
        ..EncoderConfig::default()
    };
    assert_eq!(cfg.keyframe_interval_frames(24), 1);
}

#[test]
fn build_rejects_an_invalid_config_with_a_typed_error() {
    let cfg = EncoderConfig {
        bitrate_kbps: 0,
        ..EncoderConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let err = cfg
        .build(
            &VideoSpec::new(64, 64, 24),
            &dir.path().join("v.mp4"),
            &VideoMetadata::default(),
        )
        .unwrap_err();
    assert!(
        matches!(err, EncodeError::Config(ConfigError::Bitrate { value: 0 })),
        "{err:?}"
    );
}

#[test]
fn video_spec_needs_even_sizes_and_a_sane_rate() {
    VideoSpec::new(512, 512, 24).validate().unwrap();
    VideoSpec::new(16, 4096, 120).validate().unwrap();
    for (w, h) in [(511, 512), (512, 13), (14, 64), (4098, 64), (0, 0)] {
        assert_eq!(
            VideoSpec::new(w, h, 24).validate(),
            Err(ConfigError::VideoSize {
                width: w,
                height: h
            })
        );
    }
    for fps in [0, 121] {
        assert_eq!(
            VideoSpec::new(64, 64, fps).validate(),
            Err(ConfigError::Fps { fps })
        );
    }
    assert_eq!(VideoSpec::new(4, 2, 1).rgb_frame_len(), 24);
}

#[test]
fn default_metadata_says_ai_generated() {
    let meta = VideoMetadata::default();
    assert!(meta.comment.contains("AI-generated"));
    assert_eq!(meta.comment, AI_GENERATED_LABEL);
    assert_eq!(meta.title, None);
    let from_toml: VideoMetadata = toml::from_str("title = \"Party\"").unwrap();
    assert_eq!(from_toml.comment, AI_GENERATED_LABEL);
}
