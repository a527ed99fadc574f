//! CameraSpec: the CLI string form, the TOML form, validation.

use std::path::PathBuf;

use kissbooth_capture::{CameraContext, CameraSpec, CaptureError, SpecError};

#[test]
fn stills_spec_from_cli_string() {
    let spec: CameraSpec = "stills:/usr/share/kissbooth/stills".parse().unwrap();
    assert_eq!(
        spec,
        CameraSpec::Stills {
            folder: PathBuf::from("/usr/share/kissbooth/stills"),
            interval_ms: 200
        }
    );
}

#[test]
fn v4l2_spec_from_cli_string_by_path_or_number() {
    let by_path: CameraSpec = "v4l2:/dev/video2".parse().unwrap();
    let by_number: CameraSpec = "v4l2:2".parse().unwrap();
    let expected = CameraSpec::V4l2 {
        device: PathBuf::from("/dev/video2"),
        max_width: 1920,
        max_height: 1080,
    };
    assert_eq!(by_path, expected);
    assert_eq!(by_number, expected);
}

#[test]
fn gst_spec_from_cli_string_keeps_the_pipeline_verbatim() {
    let pipeline = "nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1 ! nvvidconv";
    let spec: CameraSpec = format!("gst:{pipeline}").parse().unwrap();
    assert_eq!(
        spec,
        CameraSpec::Gst {
            pipeline: pipeline.into()
        }
    );
}

#[test]
fn test_spec_from_cli_string_with_and_without_size() {
    assert_eq!(
        "test".parse::<CameraSpec>().unwrap(),
        CameraSpec::TestPattern {
            width: 1280,
            height: 720,
            fps: 30
        }
    );
    assert_eq!(
        "test:640x480".parse::<CameraSpec>().unwrap(),
        CameraSpec::TestPattern {
            width: 640,
            height: 480,
            fps: 30
        }
    );
    assert_eq!(
        "test:320x240@15".parse::<CameraSpec>().unwrap(),
        CameraSpec::TestPattern {
            width: 320,
            height: 240,
            fps: 15
        }
    );
    assert!(matches!(
        "test:big".parse::<CameraSpec>(),
        Err(SpecError::BadTestPattern { .. })
    ));
}

#[test]
fn rejects_an_unknown_spec_scheme() {
    let err = "rtsp://camera.local/stream"
        .parse::<CameraSpec>()
        .unwrap_err();
    assert_eq!(
        err,
        SpecError::UnknownScheme {
            scheme: "rtsp".into(),
            input: "rtsp://camera.local/stream".into()
        }
    );
    let message = err.to_string();
    assert!(message.contains("\"rtsp\""), "{message}");
    assert!(message.contains("stills:FOLDER"), "{message}");
}

#[test]
fn rejects_an_empty_spec_or_a_missing_value() {
    assert_eq!("  ".parse::<CameraSpec>().unwrap_err(), SpecError::Empty);
    for input in ["stills:", "v4l2:", "gst:  ", "stills"] {
        assert!(
            matches!(
                input.parse::<CameraSpec>(),
                Err(SpecError::MissingValue { .. })
            ),
            "{input}"
        );
    }
}

#[test]
fn spec_displays_as_its_cli_string() {
    for input in [
        "stills:/srv/stills",
        "v4l2:/dev/video0",
        "gst:videotestsrc ! video/x-raw,width=320,height=240",
        "test:640x480@15",
    ] {
        let spec: CameraSpec = input.parse().unwrap();
        assert_eq!(spec.to_string(), input);
        assert_eq!(spec.to_string().parse::<CameraSpec>().unwrap(), spec);
    }
}

#[derive(serde::Deserialize)]
struct Config {
    camera: CameraSpec,
}

fn from_toml(snippet: &str) -> Result<CameraSpec, toml::de::Error> {
    toml::from_str::<Config>(snippet).map(|c| c.camera)
}

#[test]
fn spec_from_toml_snippet_with_defaults() {
    let stills = from_toml("[camera]\nkind = \"stills\"\nfolder = \"/srv/stills\"\n").unwrap();
    assert_eq!(stills, CameraSpec::stills("/srv/stills"));

    let v4l2 = from_toml("[camera]\nkind = \"v4l2\"\ndevice = \"/dev/video1\"\nmax_width = 1280\n")
        .unwrap();
    assert_eq!(
        v4l2,
        CameraSpec::V4l2 {
            device: "/dev/video1".into(),
            max_width: 1280,
            max_height: 1080
        }
    );

    let gst =
        from_toml("[camera]\nkind = \"gst\"\npipeline = \"videotestsrc is-live=true\"\n").unwrap();
    assert_eq!(
        gst,
        CameraSpec::Gst {
            pipeline: "videotestsrc is-live=true".into()
        }
    );

    let test = from_toml("[camera]\nkind = \"test\"\nfps = 10\n").unwrap();
    assert_eq!(
        test,
        CameraSpec::TestPattern {
            width: 1280,
            height: 720,
            fps: 10
        }
    );
}

#[test]
fn toml_rejects_unknown_kinds_and_fields() {
    let unknown_kind = from_toml("[camera]\nkind = \"rtsp\"\n").unwrap_err();
    assert!(unknown_kind.to_string().contains("rtsp"), "{unknown_kind}");
    let typo =
        from_toml("[camera]\nkind = \"stills\"\nfolder = \"/x\"\ninterval = 5\n").unwrap_err();
    assert!(typo.to_string().contains("interval"), "{typo}");
    let missing = from_toml("[camera]\nkind = \"stills\"\n").unwrap_err();
    assert!(missing.to_string().contains("folder"), "{missing}");
}

#[test]
fn spec_serializes_back_to_the_same_toml() {
    let spec = CameraSpec::v4l2("/dev/video0");
    let text = toml::to_string(&Config2 {
        camera: spec.clone(),
    })
    .unwrap();
    assert!(text.contains("kind = \"v4l2\""), "{text}");
    assert_eq!(from_toml(&text).unwrap(), spec);
}

#[derive(serde::Serialize)]
struct Config2 {
    camera: CameraSpec,
}

#[test]
fn validate_rejects_out_of_range_values_before_touching_anything() {
    let cases = [
        (
            CameraSpec::Stills {
                folder: "/srv".into(),
                interval_ms: 0,
            },
            "interval_ms",
        ),
        (
            CameraSpec::V4l2 {
                device: "/dev/video0".into(),
                max_width: 20_000,
                max_height: 1080,
            },
            "max_width",
        ),
        (
            CameraSpec::TestPattern {
                width: 640,
                height: 480,
                fps: 0,
            },
            "fps",
        ),
    ];
    for (spec, field) in cases {
        let err = spec.validate().unwrap_err();
        assert!(
            matches!(&err, CaptureError::Spec(SpecError::OutOfRange { field: f, .. }) if *f == field),
            "{err}"
        );
        // build validates first, so nothing is opened.
        assert!(matches!(
            spec.build(CameraContext::default()),
            Err(CaptureError::Spec(_))
        ));
    }
    assert!(matches!(
        CameraSpec::stills("").validate(),
        Err(CaptureError::Spec(SpecError::EmptyPath { field: "folder" }))
    ));
}

#[test]
fn validate_rejects_a_pipeline_that_brings_its_own_sink() {
    for pipeline in ["videotestsrc !", "videotestsrc ! appsink name=kb_sink"] {
        let spec = CameraSpec::Gst {
            pipeline: pipeline.into(),
        };
        assert!(
            matches!(
                spec.validate(),
                Err(CaptureError::Spec(SpecError::BadPipeline { .. }))
            ),
            "{pipeline}"
        );
    }
    assert!(CameraSpec::default().validate().is_ok());
}
