#![no_main]

use std::sync::LazyLock;

use kissbooth::fuzz::TokenStore;
use libfuzzer_sys::fuzz_target;

static STORE: LazyLock<TokenStore> =
    LazyLock::new(|| TokenStore::new().expect("a temporary SQLite store"));

fuzz_target!(|data: &[u8]| STORE.check(data));
