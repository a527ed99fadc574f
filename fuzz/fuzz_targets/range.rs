#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use kissbooth::fuzz::RangeServer;
use libfuzzer_sys::fuzz_target;

static SERVER: LazyLock<RangeServer> = LazyLock::new(|| {
    let models = std::env::var_os("KISSBOOTH_MODELS")
        .map(PathBuf::from)
        .expect("set KISSBOOTH_MODELS to the face models (the booth loads them at start)");
    RangeServer::start(models).expect("the booth starts")
});

fuzz_target!(|data: &[u8]| SERVER.check(data));
