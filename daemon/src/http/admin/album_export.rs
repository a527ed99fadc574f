//! `/admin/album.zip`: the hosts' album, the clips whose couples agreed to it, as one ZIP file
//! for the operator (a session is needed; nothing else is ever in it).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AdminState, blocking, message, not_done, session};
use crate::booth::Booth;

pub(super) async fn album_zip(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = session(&st, &headers).await {
        return r;
    }
    let b = st.booth.clone();
    let made = blocking(move || AlbumFile::write(&b)).await;
    let album = match made {
        Some(Ok(Some(x))) => x,
        Some(Ok(None)) => {
            return message(
                StatusCode::NOT_FOUND,
                "No album yet",
                "No couple has agreed to the hosts' album yet (the optional line on the consent screen).",
            );
        }
        Some(Err(e)) => return not_done("No album", "The album could not be made", Some(&e)),
        None => return not_done("No album", "The album could not be made", None),
    };
    let stamp = crate::sys::local_stamp(st.booth.store.now_s());
    album.download(&stamp)
}

/// The album's ZIP, written to a file that is unlinked as soon as it is open: nothing of it
/// outlives the download, and a large album never sits in memory.
struct AlbumFile {
    /// Open for reading, at its start.
    file: std::fs::File,
    len: u64,
}

impl AlbumFile {
    /// Writes the album's clips in a ZIP and audits the export; `None` when the album is empty.
    fn write(b: &Booth) -> anyhow::Result<Option<AlbumFile>> {
        let entries = b.album()?;
        if entries.is_empty() {
            return Ok(None);
        }
        let path = b
            .cfg
            .data
            .join(format!(".album-{}.zip", crate::booth::link::new_token()));
        let result = (|| {
            let mut f = std::fs::File::options()
                .create_new(true)
                .read(true)
                .write(true)
                .open(&path)?;
            crate::booth::album::write_zip(&entries, &mut std::io::BufWriter::new(&mut f))?;
            let len = f.metadata()?.len();
            anyhow::Ok((f, len))
        })();
        let _ = std::fs::remove_file(&path);
        let (mut file, len) = result?;
        use std::io::Seek;
        file.rewind()?;
        b.store.audit(
            "album_exported",
            None,
            &format!("{} clip(s)", entries.len()),
        );
        Ok(Some(AlbumFile { file, len }))
    }

    /// The download: the file streamed in 64 KiB reads, named after `stamp`.
    fn download(self, stamp: &str) -> Response {
        let stream =
            futures::stream::unfold(tokio::fs::File::from_std(self.file), |mut f| async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 64 << 10];
                match f.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok::<_, std::io::Error>(buf), f))
                    }
                    Err(e) => Some((Err(e), f)),
                }
            });
        let mut r = Body::from_stream(stream).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/zip"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(&self.len.to_string()) {
            h.insert(header::CONTENT_LENGTH, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"kissbooth-album-{stamp}.zip\""
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        r
    }
}
