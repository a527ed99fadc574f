//! The attract screen's demo clip: what the booth makes, shown to people walking by. It is
//! rendered once, at install time (`kissbooth models demo --from DIR`), from two bundled
//! photographs of public-domain paintings, checked by sha256, into `DATA/attract/demo.mp4`.
//! Nothing else is ever written there: the attract screen never shows a guest's clip.

use std::path::{Path, PathBuf};

/// A painting the demo clip is made from.
pub struct Painting {
    pub file: &'static str,
    pub sha256: &'static str,
    pub title: &'static str,
}

/// The demo couple, left then right: they read as a kiss on the contact sheets (see
/// `kissbooth bench quality`).
pub const PAINTINGS: [Painting; 2] = [
    Painting {
        file: "Baldassare_Castiglione.jpg",
        sha256: "8433db778b3996477bc05c0841e7c7544baa2aae125646cb8483fe90a950e274",
        title: "Raphael, Portrait of Baldassare Castiglione (c. 1514-15)",
    },
    Painting {
        file: "Girl_with_a_Pearl_Earring.jpg",
        sha256: "4ba6e9c9583bec26653e9b8ddfa1d82fc5859262dfa4f4515ce09e21ba49ef36",
        title: "Johannes Vermeer, Girl with a Pearl Earring (c. 1665)",
    },
];

/// Where the demo clip lives in the data folder.
pub fn clip_path(data: &Path) -> PathBuf {
    data.join("attract").join("demo.mp4")
}

/// The paintings in `folder`, each checked against its sha256: anything else (a guest's
/// picture, an altered copy) is refused.
pub fn paintings_in(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use sha2::{Digest, Sha256};
    PAINTINGS
        .iter()
        .map(|p| {
            let path = folder.join(p.file);
            let bytes = std::fs::read(&path).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (the demo clip is made from {} and {})",
                    path.display(),
                    PAINTINGS[0].file,
                    PAINTINGS[1].file
                )
            })?;
            let got = hex::encode(Sha256::digest(&bytes));
            anyhow::ensure!(
                got == p.sha256,
                "{} is not the bundled photograph of {} (sha256 {got}, expected {}); the demo \
                 clip is made only from the bundled public-domain paintings",
                path.display(),
                p.title,
                p.sha256
            );
            Ok(path)
        })
        .collect()
}
