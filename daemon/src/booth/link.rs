//! A clip's download link, in two forms: the 128-bit token in the QR code (`/d/<32 hex>`), and
//! a short code written under it for a phone that cannot scan (`/d/ABCD-2345`: 8 Crockford
//! base-32 characters, 40 bits). Both open the same pages. The database keeps only their
//! sha256. A short code can be typed, so it can be guessed: [`Guesses`] limits how many wrong
//! short codes a phone (and every phone together) may try.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::RngCore;

/// Crockford's base 32: no I, L, O or U, so a code read off a screen is typed right.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of a short code.
pub const SHORT_LEN: usize = 8;

/// A new download token: 32 hexadecimal digits (128 random bits).
pub fn new_token() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A new short code, in its stored form (`ABCD2345`).
pub fn new_short() -> String {
    let mut b = [0u8; SHORT_LEN];
    rand::rng().fill_bytes(&mut b);
    b.iter()
        .map(|x| ALPHABET[usize::from(x % 32)] as char)
        .collect()
}

/// How a short code is written on the screen: `ABCD-2345`.
pub fn short_display(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(SHORT_LEN / 2));
    format!("{a}-{b}")
}

/// The stored form of what a guest typed, when it can be a short code: case and dashes do not
/// matter, and the letters people type for digits (O, I, L) count as those digits.
pub fn normalize_short(typed: &str) -> Option<String> {
    if typed.len() > 2 * SHORT_LEN {
        return None;
    }
    let mut code = String::with_capacity(SHORT_LEN);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        code.push(c);
    }
    (code.len() == SHORT_LEN).then_some(code)
}

/// True when `key` has the shape of a download token: 32 hexadecimal digits.
pub fn is_token_shaped(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a `/d/{key}` names: a token, a short code, or nothing worth asking the database about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Token(String),
    Short(String),
}

impl Key {
    pub fn parse(key: &str) -> Option<Key> {
        if is_token_shaped(key) {
            Some(Key::Token(key.to_string()))
        } else {
            normalize_short(key).map(Key::Short)
        }
    }
}

/// Wrong short codes one phone may try in [`WINDOW`].
pub const PER_PEER_MISSES: usize = 10;
/// Wrong short codes all phones together may try in [`WINDOW`]: guessing from many addresses
/// stops too (the QR code's long links keep working).
pub const ALL_MISSES: usize = 200;
pub const WINDOW: Duration = Duration::from_secs(600);

/// Recent wrong short codes, by phone and in all. With 40-bit codes and a few hundred clips on
/// the booth, 200 guesses in 10 minutes find one in about 2·10⁷ hours.
#[derive(Default)]
pub struct Guesses {
    by_peer: HashMap<IpAddr, VecDeque<Instant>>,
    all: VecDeque<Instant>,
}

impl Guesses {
    fn prune(&mut self, now: Instant) {
        crate::window::prune(&mut self.by_peer, &mut self.all, now, WINDOW);
    }

    /// Whether `ip` may try a short code now.
    pub fn allowed(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.prune(now);
        let own = self.by_peer.get(&ip).map_or(0, VecDeque::len);
        own < PER_PEER_MISSES && self.all.len() < ALL_MISSES
    }

    /// Records a short code from `ip` that opened nothing.
    pub fn missed(&mut self, ip: IpAddr, now: Instant) {
        self.by_peer.entry(ip).or_default().push_back(now);
        self.all.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_codes_are_typed_forgivingly_and_nothing_else_passes() {
        for _ in 0..200 {
            let c = new_short();
            assert_eq!(c.len(), SHORT_LEN);
            assert_eq!(normalize_short(&c).as_deref(), Some(c.as_str()));
            assert_eq!(
                normalize_short(&short_display(&c).to_lowercase()).as_deref(),
                Some(c.as_str())
            );
        }
        assert_eq!(normalize_short("abcd-o1l5").as_deref(), Some("ABCD0115"));
        assert_eq!(normalize_short("ABCD 2345").as_deref(), Some("ABCD2345"));
        assert_eq!(normalize_short("ABCD-234"), None, "too short");
        assert_eq!(normalize_short("ABCD-23456"), None, "too long");
        assert_eq!(
            normalize_short("ABCU-2345"),
            None,
            "U is not in the alphabet"
        );
        assert_eq!(normalize_short("ABCD-234é"), None);
        assert_eq!(normalize_short("../../etc"), None);
        assert_eq!(short_display("ABCD2345"), "ABCD-2345");
        let t = new_token();
        assert!(is_token_shaped(&t));
        assert_eq!(Key::parse(&t), Some(Key::Token(t.clone())));
        assert_eq!(Key::parse("abcd-2345"), Some(Key::Short("ABCD2345".into())));
        assert_eq!(Key::parse("not-a-token"), None);
        // Forgiving on purpose: anything that reads as 8 code characters is looked up.
        assert_eq!(
            Key::parse("not a link"),
            Some(Key::Short("N0TA11NK".into()))
        );
    }

    #[test]
    fn wrong_short_codes_lock_one_phone_then_everyone_for_the_window() {
        let mut g = Guesses::default();
        let t0 = Instant::now();
        let a: IpAddr = "10.42.0.20".parse().unwrap();
        let b: IpAddr = "10.42.0.21".parse().unwrap();
        for _ in 0..PER_PEER_MISSES {
            assert!(g.allowed(a, t0));
            g.missed(a, t0);
        }
        assert!(!g.allowed(a, t0), "a phone's eleventh guess is refused");
        assert!(g.allowed(b, t0), "another phone may still try");
        assert!(
            g.allowed(a, t0 + WINDOW),
            "and the first again after the window"
        );
        // Many phones together.
        let mut g = Guesses::default();
        for i in 0..ALL_MISSES {
            let ip = IpAddr::from([10, 42, (i / 250) as u8, (i % 250) as u8]);
            assert!(g.allowed(ip, t0));
            g.missed(ip, t0);
        }
        assert!(!g.allowed("10.42.9.9".parse().unwrap(), t0));
        assert!(g.allowed("10.42.9.9".parse().unwrap(), t0 + WINDOW));
    }
}
