//! The booth's network face: its LAN address for QR codes, and QR rendering.

use std::net::{IpAddr, SocketAddr};

use qrcode::QrCode;
use qrcode::render::svg;

/// `http://LAN-ADDRESS:PORT` for the QR codes: the first private IPv4 address of an interface
/// that is up, else any non-loopback one, else the listen address.
pub fn default_public_url(listen: SocketAddr) -> String {
    let port = listen.port();
    let ip = lan_address().unwrap_or(if listen.ip().is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        listen.ip()
    });
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }
}

pub fn lan_address() -> Option<IpAddr> {
    let ifs = if_addrs::get_if_addrs().ok()?;
    let v4: Vec<_> = ifs
        .iter()
        .filter(|i| !i.is_loopback())
        .filter_map(|i| match i.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .collect();
    v4.iter()
        .find(|a| a.is_private())
        .or(v4.first())
        .map(|a| IpAddr::V4(*a))
}

/// An SVG QR code for `text`, dark on white with a quiet zone.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(320, 320)
            .quiet_zone(true)
            .build(),
    )
}

/// A PNG QR code for `text`.
pub fn qr_png(text: &str) -> Option<Vec<u8>> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    let img = code
        .render::<image::Luma<u8>>()
        .min_dimensions(320, 320)
        .quiet_zone(true)
        .build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).ok()?;
    Some(out.into_inner())
}

/// The `WIFI:` URI phones understand for joining a network, with the special characters escaped.
pub fn wifi_uri(ssid: &str, password: &str, security: &str) -> String {
    let esc = |s: &str| {
        s.chars().fold(String::new(), |mut o, c| {
            if matches!(c, '\\' | ';' | ',' | ':' | '"') {
                o.push('\\');
            }
            o.push(c);
            o
        })
    };
    let t = if security.is_empty() { "WPA" } else { security };
    if t == "nopass" {
        format!("WIFI:T:nopass;S:{};;", esc(ssid))
    } else {
        format!("WIFI:T:{t};S:{};P:{};;", esc(ssid), esc(password))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wifi_uri_escapes_special_characters() {
        assert_eq!(
            wifi_uri("Kiss;Booth", "a:b\\c", "WPA"),
            "WIFI:T:WPA;S:Kiss\\;Booth;P:a\\:b\\\\c;;"
        );
        assert_eq!(wifi_uri("open", "", "nopass"), "WIFI:T:nopass;S:open;;");
    }

    #[test]
    fn qr_codes_render() {
        assert!(
            qr_svg("http://192.168.4.1:8080/d/abc")
                .unwrap()
                .starts_with("<?xml")
        );
        let png = qr_png("http://x/d/abc").unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
